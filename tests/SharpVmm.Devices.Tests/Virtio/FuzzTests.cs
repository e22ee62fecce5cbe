using SharpVmm.Block;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Blk;
using SharpVmm.Devices.Virtio.Rng;
using Xunit.Abstractions;

namespace SharpVmm.Devices.Tests.Virtio;

/// <summary>
/// Random ring contents, notified through the transport. Descriptors point into a buffer area, into indirect tables
/// the fuzzer also fills, or at addresses outside RAM. Whatever the guest wrote, the transport must not throw, must
/// park the device in NEEDS_RESET only for guest faults, keep the interrupt line in step with InterruptStatus, and
/// never write the descriptor table, the avail ring or the guard area no descriptor points at.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private const ulong BufLo = 0x10000, BufHi = 0x30000, IndirectLo = 0x30000, GuardLo = 0x38000, GuardHi = 0x40000;
    private const ushort Size = 16;

    [Fact]
    public void Random_rings_never_escape_the_transport_or_ram()
    {
        int baseSeed = Environment.GetEnvironmentVariable("SHARPVMM_FUZZ_SEED") is { } s ? int.Parse(s) : 20261124;
        string dir = Directory.CreateTempSubdirectory("sharpvmm-vfuzz-").FullName;
        using var ring = new Ring(Size);
        using var image = ImageFactory.Create(Path.Combine(dir, "disk.raw"), "raw", 64 * 1024);
        int ok = 0, refused = 0;
        try
        {
            for (int iter = 0; iter < 1500; iter++)
            {
                int seed = baseSeed + iter;
                try
                {
                    if (RunOne(seed, ring, image)) ok++;
                    else refused++;
                }
                catch (Exception)
                {
                    output.WriteLine($"virtio fuzz failed with seed {seed} (rerun: SHARPVMM_FUZZ_SEED={seed})");
                    Console.Error.WriteLine($"virtio fuzz failed with seed {seed} (rerun: SHARPVMM_FUZZ_SEED={seed})");
                    throw;
                }
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
        output.WriteLine($"served {ok}, refused {refused}");
        Assert.True(ok > 100 && refused > 100, $"the fuzzer should hit both paths: served {ok}, refused {refused}");
    }

    private static bool RunOne(int seed, Ring ring, IBlockImage image)
    {
        var rnd = new Random(seed);
        var mem = ring.Memory;
        mem.Clear(0, Ring.RamEnd);
        IVirtioDevice device = rnd.Next(2) == 0 ? new VirtioRng() : new VirtioBlk(image, "fuzz");
        var line = new LevelLine();
        var transport = new VirtioMmioTransport(device, mem, line);
        var d = new MmioDriver(transport);
        ulong features = VirtioFeatures.Version1
            | (rnd.Next(2) == 0 ? VirtioFeatures.IndirectDesc : 0)
            | (rnd.Next(2) == 0 ? VirtioFeatures.EventIdx : 0);
        d.BringUp(ring, features);

        for (int i = 0; i < Size; i++) WriteRandomDesc(rnd, ring, i, Ring.Desc, Size, allowIndirect: true);
        int heads = rnd.Next(1, Size + 1);
        ushort availIdx = rnd.Next(8) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)heads;
        for (int i = 0; i < Size; i++)
            mem.Write(Ring.Avail + 4 + 2UL * (uint)i, rnd.Next(6) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)rnd.Next(Size));
        mem.Write(Ring.Avail, (ushort)rnd.Next(2));
        mem.Write(Ring.Avail + 4 + 2UL * Size, (ushort)rnd.Next(Size)); // used_event
        ring.SetAvailIdx(availIdx);
        // Random payload in the buffer area: blk headers, sectors and segments come from here.
        var payload = new byte[BufHi - BufLo];
        rnd.NextBytes(payload);
        for (int i = 0; i < payload.Length; i += 16) payload[i] = (byte)rnd.Next(16); // plausible request types
        mem.Write(BufLo, payload);

        var descBefore = mem.GetReadOnlySpan(Ring.Desc, 16 * Size).ToArray();
        var availBefore = mem.GetReadOnlySpan(Ring.Avail, 6 + 2 * Size).ToArray();
        var guardBefore = mem.GetReadOnlySpan(GuardLo, (int)(GuardHi - GuardLo)).ToArray();

        for (int n = rnd.Next(1, 4); n > 0; n--)
            d.Notify((uint)rnd.Next(3) == 2 ? 5u : 0u); // sometimes a queue that does not exist

        Assert.Equal(descBefore, mem.GetReadOnlySpan(Ring.Desc, 16 * Size).ToArray());
        Assert.Equal(availBefore, mem.GetReadOnlySpan(Ring.Avail, 6 + 2 * Size).ToArray());
        Assert.Equal(guardBefore, mem.GetReadOnlySpan(GuardLo, (int)(GuardHi - GuardLo)).ToArray());
        Assert.Equal(transport.InterruptStatus != 0, line.High);
        bool broken = (transport.Status & VirtioStatus.DeviceNeedsReset) != 0;
        if (broken)
            Assert.True(transport.LastError is VirtqueueException or VirtioProtocolException,
                $"device failed with an unexpected {transport.LastError?.GetType().Name}: {transport.LastError?.Message}");
        else
            Assert.Null(transport.LastError);
        d.Write(VirtioMmioRegisters.Status, 0);
        Assert.Equal(VirtioStatus.None, transport.Status);
        return !broken;
    }

    private static void WriteRandomDesc(Random rnd, Ring ring, int i, ulong table, int tableSize, bool allowIndirect)
    {
        ulong addr;
        uint len;
        ushort flags = 0;
        int kind = rnd.Next(20);
        if (allowIndirect && kind == 0)
        {
            // An indirect table the fuzzer fills too, somewhere in [IndirectLo, GuardLo).
            int entries = rnd.Next(1, 9);
            ulong t = IndirectLo + (ulong)i * 0x200;
            for (int j = 0; j < entries; j++) WriteRandomDesc(rnd, ring, j, t, entries, allowIndirect: rnd.Next(10) == 0);
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
                4 => (Ring.RamEnd - 8, 64u), // runs off low RAM into the hole
                _ => (BufLo + (ulong)rnd.Next(0, (int)(BufHi - BufLo - 0x1000)), (uint)rnd.Next(0, 0x1000)),
            };
            if (rnd.Next(2) == 0) flags |= Ring.Write;
            if (rnd.Next(3) != 0) flags |= Ring.Next;
            if (rnd.Next(30) == 0) flags |= Ring.Indirect;
        }
        ushort next = rnd.Next(10) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)rnd.Next(tableSize);
        ring.SetDesc(i, addr, len, flags, next, table);
    }
}
