using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Net;
using Xunit.Abstractions;

namespace SharpVmm.Devices.Tests.Virtio.Net;

/// <summary>
/// Random receive and transmit rings, random frames from the backend (runts, jumbo, oversized) and notifications in
/// random order. Whatever the guest wrote, nothing escapes the transport, the device parks in NEEDS_RESET only for
/// guest faults, the interrupt line follows InterruptStatus, and the rings' driver areas and a guard area are never
/// written.
/// </summary>
public sealed class VirtioNetFuzzTests(ITestOutputHelper output)
{
    private const ulong TxDesc = 0x4000, TxAvail = 0x5000, TxUsed = 0x6000;
    private const ulong BufLo = 0x10000, BufHi = 0x30000, IndirectLo = 0x30000, GuardLo = 0x38000, GuardHi = 0x40000;
    private const ushort Size = 16;

    [Fact]
    public void Random_rings_and_frames_never_escape_the_transport_or_ram()
    {
        int baseSeed = Environment.GetEnvironmentVariable("SHARPVMM_FUZZ_SEED") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : 20261124;
        using var rx = new Ring(Size);
        using var tx = new Ring(Size, rx.Memory, TxDesc, TxAvail, TxUsed);
        int ok = 0, refused = 0;
        long sent = 0, received = 0;
        for (int iter = 0; iter < 800; iter++)
        {
            int seed = baseSeed + iter;
            try
            {
                var (healthy, s1, r1) = RunOne(seed, rx, tx);
                if (healthy) ok++;
                else refused++;
                sent += s1;
                received += r1;
            }
            catch (Exception)
            {
                output.WriteLine($"virtio-net fuzz failed with seed {seed} (rerun: SHARPVMM_FUZZ_SEED={seed})");
                throw;
            }
        }
        output.WriteLine($"healthy {ok}, refused {refused}, frames sent {sent}, received {received}");
        Assert.True(ok > 100 && refused > 100, $"the fuzzer should hit both paths: healthy {ok}, refused {refused}");
        Assert.True(sent > 50 && received > 50, $"frames should flow both ways: sent {sent}, received {received}");
    }

    private static (bool Healthy, long Sent, long Received) RunOne(int seed, Ring rx, Ring tx)
    {
        var rnd = new Random(seed);
        var mem = rx.Memory;
        mem.Clear(0, Ring.RamEnd);
        var backend = new VirtioNetTests.Backend();
        var net = new VirtioNet(backend, SharpVmm.Devices.Net.MacAddress.Default);
        var line = new LevelLine();
        var transport = new VirtioMmioTransport(net, mem, line);
        var d = new MmioDriver(transport);
        ulong features = VirtioFeatures.Version1 | 1UL << VirtioNetConstants.FeatureMac
            | (rnd.Next(2) == 0 ? VirtioFeatures.IndirectDesc : 0)
            | (rnd.Next(2) == 0 ? VirtioFeatures.EventIdx : 0);
        Assert.True(d.Negotiate(features));
        d.SetupQueue(0, Size);
        d.SetupQueue(1, Size, TxDesc, TxAvail, TxUsed);
        d.SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);

        foreach (var (ring, indirect, writable) in new[] { (rx, IndirectLo, 3), (tx, IndirectLo + 0x4000, 8) })
        {
            for (int i = 0; i < Size; i++) WriteRandomDesc(rnd, ring, i, ring.DescAt, Size, indirect, writable, allowIndirect: true);
            for (int i = 0; i < Size; i++)
                mem.Write(ring.AvailAt + 4 + 2UL * (uint)i, rnd.Next(32) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)i);
            mem.Write(ring.AvailAt, (ushort)rnd.Next(2));
            mem.Write(ring.AvailAt + 4 + 2UL * Size, (ushort)rnd.Next(Size));
            ring.SetAvailIdx(rnd.Next(8) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)rnd.Next(1, Size + 1));
        }
        var payload = new byte[BufHi - BufLo];
        rnd.NextBytes(payload);
        for (int i = 0; i < payload.Length; i += 64) payload[i + 1] = (byte)(rnd.Next(4) == 0 ? rnd.Next(256) : 0); // gso_type
        mem.Write(BufLo, payload);

        var areas = new[] { (rx.DescAt, 16 * Size), (rx.AvailAt, 6 + 2 * Size), (TxDesc, 16 * Size), (TxAvail, 6 + 2 * Size), (GuardLo, (int)(GuardHi - GuardLo)) };
        var before = areas.Select(a => mem.GetReadOnlySpan(a.Item1, a.Item2).ToArray()).ToArray();

        for (int n = rnd.Next(1, 12); n > 0; n--)
        {
            switch (rnd.Next(4))
            {
                case 0: d.Notify(0); break;
                case 1: d.Notify(1); break;
                case 2:
                    int len = rnd.Next(10) switch { 0 => rnd.Next(0, 14), 1 => VirtioNet.MaxFrameSize + rnd.Next(0, 100), 2 => rnd.Next(1515, 9000), _ => rnd.Next(14, 1515) };
                    var frame = new byte[len];
                    rnd.NextBytes(frame);
                    backend.Receive!(frame);
                    break;
                default: net.LinkUp = rnd.Next(4) != 0; break;
            }
        }

        for (int i = 0; i < areas.Length; i++) Assert.Equal(before[i], mem.GetReadOnlySpan(areas[i].Item1, areas[i].Item2).ToArray());
        Assert.Equal(transport.InterruptStatus != 0, line.High);
        Assert.All(backend.Sent, f => Assert.InRange(f.Length, VirtioNetConstants.EthernetHeaderSize, VirtioNet.MaxFrameSize));
        Assert.True(net.PendingFrames <= VirtioNet.MaxPendingFrames);
        bool broken = (transport.Status & VirtioStatus.DeviceNeedsReset) != 0;
        if (broken)
            Assert.True(transport.LastError is VirtqueueException or VirtioProtocolException,
                $"device failed with an unexpected {transport.LastError?.GetType().Name}: {transport.LastError?.Message}");
        else
            Assert.Null(transport.LastError);
        d.Write(VirtioMmioRegisters.Status, 0);
        Assert.Equal(VirtioStatus.None, transport.Status);
        Assert.Equal(0, net.PendingFrames);
        return (!broken, net.TxFrames, net.RxFrames);
    }

    private static void WriteRandomDesc(Random rnd, Ring ring, int i, ulong table, int tableSize, ulong indirectBase, int writableOneIn, bool allowIndirect)
    {
        ulong addr;
        uint len;
        ushort flags = 0;
        int kind = rnd.Next(40);
        if (allowIndirect && kind == 0)
        {
            int entries = rnd.Next(1, 9);
            ulong t = indirectBase + (ulong)i * 0x200;
            for (int j = 0; j < entries; j++) WriteRandomDesc(rnd, ring, j, t, entries, indirectBase, writableOneIn, allowIndirect: false);
            addr = t;
            len = rnd.Next(8) == 0 ? (uint)rnd.Next(0, 200) : (uint)entries * 16;
            flags = (ushort)(Ring.Indirect | (rnd.Next(8) == 0 ? Ring.Next : 0));
        }
        else
        {
            (addr, len) = kind switch
            {
                1 => (Ring.HoleStart + (ulong)rnd.Next(0x1000), (uint)rnd.Next(1, 64)),
                2 => (Ring.HighEnd - (ulong)rnd.Next(0, 16), (uint)rnd.Next(1, 64)),
                3 => (ulong.MaxValue - (ulong)rnd.Next(0, 64), (uint)rnd.Next(1, 4096)),
                4 => (Ring.RamEnd - 8, 64u),
                5 => (Ring.HighBase, (uint)(Ring.HighEnd - Ring.HighBase)), // a whole 64 KiB region
                _ => (BufLo + ((ulong)rnd.Next(0, (int)(BufHi - BufLo - 0x1000)) & ~63UL), (uint)rnd.Next(0, 0x1000)), // headers at 64-byte steps
            };
            bool writable = writableOneIn == 3 ? rnd.Next(3) != 0 : rnd.Next(writableOneIn) == 0; // mostly right, sometimes not
            if (writable) flags |= Ring.Write;
            if (rnd.Next(4) == 0) flags |= Ring.Next;
            if (rnd.Next(30) == 0) flags |= Ring.Indirect;
        }
        ushort next = rnd.Next(10) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)rnd.Next(tableSize);
        ring.SetDesc(i, addr, len, flags, next, table);
    }
}
