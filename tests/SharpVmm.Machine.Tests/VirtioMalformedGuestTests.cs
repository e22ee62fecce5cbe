using Iced.Intel;
using SharpVmm.Block;
using SharpVmm.Boot.Flat;
using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Blk;
using SharpVmm.Machine.Config;
using static Iced.Intel.AssemblerRegisters;
using R = SharpVmm.Devices.Virtio.VirtioMmioRegisters;

namespace SharpVmm.Machine.Tests;

/// <summary>
/// A hostile guest driving virtio-blk over MMIO on a real accelerator: descriptor loops, buffers outside RAM, a
/// length that runs off RAM, device-readable after device-writable, and data in the wrong direction. Queue-level
/// violations park the device in DEVICE_NEEDS_RESET with a config interrupt; a request-level one gets IOERR; the
/// VMM runs on and after a driver reset valid requests work.
/// </summary>
public sealed class VirtioMalformedGuestTests : IDisposable
{
    private const uint Mmio = 0xD000_0000;
    private const uint Desc = 0x10_0000, Avail = 0x10_1000, Used = 0x10_2000;
    private const uint Header = 0x10_3000, Data = 0x10_4000, Data2 = 0x10_5000, Data3 = 0x10_6000;
    private const uint StatusA = 0x10_7000, StatusB = 0x10_7010, StatusC = 0x10_7020;
    private const uint ScriptAt = 0x20_0000, ResultsAt = 0x30_0000;
    private const ushort QueueSize = 16, Next = 1, Write = 2;
    private const uint DeviceNeedsReset = 0x40, AllOk = 0x0F;

    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-vmal-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// The guest: a tiny interpreter of a host-written script of 16-byte entries {op, address, value, mask}:
    /// 1 = 32-bit store, 2 = 16-bit store, 3 = 32-bit load into the next result slot, 4 = poll a 32-bit load until
    /// (load &amp; mask) == value and store the polls left (0 = gave up) in the next result slot, 0 = exit code 0x2a.
    /// Every register access is a real MMIO exit; every ring update a real store to guest RAM.
    /// </summary>
    private static byte[] Interpreter()
    {
        var a = new Assembler(32);
        Label top = a.CreateLabel(), not1 = a.CreateLabel(), not2 = a.CreateLabel(), not3 = a.CreateLabel();
        Label spin = a.CreateLabel(), got = a.CreateLabel(), done = a.CreateLabel();
        a.mov(esi, ScriptAt);
        a.mov(edi, ResultsAt);
        a.Label(ref top);
        a.mov(eax, __dword_ptr[esi]);
        a.mov(ebx, __dword_ptr[esi + 4]);
        a.mov(ecx, __dword_ptr[esi + 8]);
        a.mov(edx, __dword_ptr[esi + 12]);
        a.add(esi, 16);
        a.cmp(eax, 1); a.jne(not1);
        a.mov(__dword_ptr[ebx], ecx); a.jmp(top);
        a.Label(ref not1);
        a.cmp(eax, 2); a.jne(not2);
        a.mov(__word_ptr[ebx], cx); a.jmp(top);
        a.Label(ref not2);
        a.cmp(eax, 3); a.jne(not3);
        a.mov(eax, __dword_ptr[ebx]); a.mov(__dword_ptr[edi], eax); a.add(edi, 4); a.jmp(top);
        a.Label(ref not3);
        a.cmp(eax, 4); a.jne(done);
        a.mov(ebp, 20_000_000);
        a.Label(ref spin);
        a.mov(eax, __dword_ptr[ebx]);
        a.and(eax, edx);
        a.cmp(eax, ecx);
        a.je(got);
        a.dec(ebp);
        a.jnz(spin);
        a.Label(ref got);
        a.mov(__dword_ptr[edi], ebp); a.add(edi, 4); a.jmp(top);
        a.Label(ref done);
        a.mov(al, 0x2a);
        a.@out(0xF4, al);
        a.cli();
        a.hlt();
        return GuestHarness.Assemble(a, EntryMode.Protected, 0x1000);
    }

    /// <summary>Builds the script the interpreter runs: what a virtio driver does, step by step.</summary>
    private sealed class Script
    {
        private readonly List<uint> _words = [];
        private ushort _availIdx;
        public int Results { get; private set; }

        private void Op(uint op, uint address, uint value = 0, uint mask = 0) => _words.AddRange([op, address, value, mask]);
        public void W32(uint address, uint value) => Op(1, address, value);
        public void W16(uint address, ushort value) => Op(2, address, value);
        public int Load(uint address) { Op(3, address); return Results++; }
        public int Wait(uint address, uint mask, uint value) { Op(4, address, value, mask); return Results++; }
        public void Reg(uint offset, uint value) => W32(Mmio + offset, value);
        public int ReadReg(uint offset) => Load(Mmio + offset);

        /// <summary>Reset, negotiate VERSION_1 only, program queue 0 on zeroed rings, DRIVER_OK; returns the Status read back.</summary>
        public int BringUp()
        {
            Reg(R.Status, 0);
            Reg(R.Status, 1);
            Reg(R.Status, 3);
            Reg(R.DriverFeaturesSel, 1); Reg(R.DriverFeatures, 1); // bit 32: VIRTIO_F_VERSION_1
            Reg(R.DriverFeaturesSel, 0); Reg(R.DriverFeatures, 0);
            Reg(R.Status, 0xB);
            W16(Avail, 0); W16(Avail + 2, 0); W16(Used, 0); W16(Used + 2, 0);
            _availIdx = 0;
            Reg(R.QueueSel, 0);
            Reg(R.QueueNum, QueueSize);
            Reg(R.QueueDescLow, Desc); Reg(R.QueueDescHigh, 0);
            Reg(R.QueueDriverLow, Avail); Reg(R.QueueDriverHigh, 0);
            Reg(R.QueueDeviceLow, Used); Reg(R.QueueDeviceHigh, 0);
            Reg(R.QueueReady, 1);
            Reg(R.Status, AllOk);
            return ReadReg(R.Status);
        }

        public void SetDesc(int i, ulong address, uint length, ushort flags, ushort next = 0)
        {
            uint e = Desc + 16u * (uint)i;
            W32(e, (uint)address); W32(e + 4, (uint)(address >> 32));
            W32(e + 8, length);
            W16(e + 12, flags); W16(e + 14, next);
        }

        /// <summary>Makes <paramref name="head"/> available and notifies; returns the used index it will complete as.</summary>
        public ushort Offer(ushort head)
        {
            W16(Avail + 4 + 2u * (uint)(_availIdx % QueueSize), head);
            _availIdx++;
            W16(Avail + 2, _availIdx);
            Reg(R.QueueNotify, 0);
            return _availIdx;
        }

        /// <summary>Waits for DEVICE_NEEDS_RESET, reads InterruptStatus, acks it: (wait slot, interrupt slot).</summary>
        public (int Wait, int Interrupt) ExpectNeedsReset()
        {
            int w = Wait(Mmio + R.Status, DeviceNeedsReset, DeviceNeedsReset);
            int i = ReadReg(R.InterruptStatus);
            Reg(R.InterruptAck, 3);
            return (w, i);
        }

        /// <summary>Polls the used ring's index (the high half of the flags+idx word) until it reaches <paramref name="idx"/>.</summary>
        public int WaitUsed(ushort idx) => Wait(Used, 0xFFFF_0000, (uint)idx << 16);

        public byte[] Bytes()
        {
            Op(0, 0);
            var b = new byte[_words.Count * 4];
            for (int i = 0; i < _words.Count; i++) BitConverter.TryWriteBytes(b.AsSpan(i * 4), _words[i]);
            return b;
        }
    }

    private sealed class CountingLine : IInterruptLine
    {
        public int Raises;
        public void Raise() => Interlocked.Increment(ref Raises);
        public void Lower() { }
        public void Pulse() => Interlocked.Increment(ref Raises);
    }

    private static void WriteHeader(Memory.GuestMemory m, uint at, uint type, ulong sector)
    {
        m.Write(at, type);
        m.Write(at + 4, 0u);
        m.Write(at + 8, sector);
    }

    [Theory]
    [InlineData(AcceleratorKind.Emu, false), InlineData(AcceleratorKind.Emu, true)]
    [KvmInlineData(AcceleratorKind.Kvm, false), KvmInlineData(AcceleratorKind.Kvm, true)]
    public void Malformed_descriptors_leave_the_vmm_running_and_the_device_usable_after_a_reset(AcceleratorKind accel, bool ioThread)
    {
        var s = new Script();
        int up0 = s.BringUp();
        // 1. A chain that loops: 0 -> 1 -> 0.
        s.SetDesc(0, Header, 16, Next, 1);
        s.SetDesc(1, Header + 16, 16, Next, 0);
        s.Offer(0);
        var loop = s.ExpectNeedsReset();
        // Notifications are ignored while the device needs a reset: nothing gets used.
        s.Reg(R.QueueNotify, 0);
        int usedWhileBroken = s.Load(Used);
        int up1 = s.BringUp();
        // 2. A header buffer outside guest RAM (256 MiB, the VM has 64).
        s.SetDesc(0, 0x1000_0000, 16, Next, 1);
        s.SetDesc(1, StatusA, 1, Write);
        s.Offer(0);
        var outside = s.ExpectNeedsReset();
        int up2 = s.BringUp();
        // 3. A length that runs from RAM far past its end.
        s.SetDesc(0, Header, 0xFFFF_FFF0, Next, 1);
        s.SetDesc(1, StatusA, 1, Write);
        s.Offer(0);
        var huge = s.ExpectNeedsReset();
        int up3 = s.BringUp();
        // 4. A device-readable buffer after a device-writable one.
        s.SetDesc(0, Header, 16, Next, 1);
        s.SetDesc(1, StatusA, 1, Write | Next, 2);
        s.SetDesc(2, Data, 512, 0);
        s.Offer(0);
        var direction = s.ExpectNeedsReset();
        int up4 = s.BringUp();
        // 5. A read whose data buffer the device may only read: a per-request error, the device stays up.
        s.SetDesc(0, Header, 16, Next, 1);
        s.SetDesc(1, Data2, 512, Next, 2);
        s.SetDesc(2, StatusA, 1, Write);
        int used1 = s.WaitUsed(s.Offer(0));
        // 6. Valid: write sector 5 from Data, then read it back into Data3.
        s.SetDesc(3, Header + 32, 16, Next, 4);
        s.SetDesc(4, Data, 512, Next, 5);
        s.SetDesc(5, StatusB, 1, Write);
        int used2 = s.WaitUsed(s.Offer(3));
        s.SetDesc(6, Header + 64, 16, Next, 7);
        s.SetDesc(7, Data3, 512, Write | Next, 8);
        s.SetDesc(8, StatusC, 1, Write);
        int used3 = s.WaitUsed(s.Offer(6));
        int final = s.ReadReg(R.Status);

        string imagePath = Path.Combine(_dir, "disk.raw");
        using var image = ImageFactory.Create(imagePath, "raw", 1 << 20);
        using var blk = new VirtioBlk(image, "malformed", ioThread: ioThread);
        using var h = new GuestHarness();
        using var vm = h.Build(Interpreter(), EntryMode.Protected, accel: accel);
        var line = new CountingLine();
        var transport = new VirtioMmioTransport(blk, vm.Memory, line);
        vm.Bus.RegisterMmio(Mmio, R.WindowSize, transport, "virtio-blk");
        var m = vm.Memory;
        m.Write(ScriptAt, s.Bytes());
        WriteHeader(m, Header, VirtioBlkConstants.TypeIn, 5);
        WriteHeader(m, Header + 32, VirtioBlkConstants.TypeOut, 5);
        WriteHeader(m, Header + 64, VirtioBlkConstants.TypeIn, 5);
        var pattern = new byte[512];
        for (int i = 0; i < pattern.Length; i++) pattern[i] = (byte)(i * 7 + 3);
        m.Write(Data, pattern);
        foreach (var st in new[] { StatusA, StatusB, StatusC }) m.Write(st, (byte)0xEE);

        var r = GuestHarness.RunToEnd(vm, timeoutSeconds: 300);
        Assert.True(r.ExitCode == ((0x2a << 1) | 1), $"{r.Reason}: {r.Message}");
        uint Result(int slot) => m.Read<uint>(ResultsAt + 4u * (uint)slot);

        foreach (int up in new[] { up0, up1, up2, up3, up4 }) Assert.Equal(AllOk, Result(up));
        foreach (var (wait, interrupt) in new[] { loop, outside, huge, direction })
        {
            Assert.NotEqual(0u, Result(wait)); // DEVICE_NEEDS_RESET came before the guest gave up polling
            Assert.Equal(VirtioMmioTransport.InterruptConfigChange, Result(interrupt) & VirtioMmioTransport.InterruptConfigChange);
        }
        Assert.Equal(0u, Result(usedWhileBroken) >> 16);
        foreach (int used in new[] { used1, used2, used3 }) Assert.NotEqual(0u, Result(used));
        Assert.Equal(VirtioBlkConstants.StatusIoErr, m.Read<byte>(StatusA));
        Assert.Equal(VirtioBlkConstants.StatusOk, m.Read<byte>(StatusB));
        Assert.Equal(VirtioBlkConstants.StatusOk, m.Read<byte>(StatusC));
        Assert.Equal(AllOk, Result(final));
        Assert.Equal(pattern, m.GetReadOnlySpan(Data3, 512).ToArray());
        Assert.All(m.GetReadOnlySpan(Data2, 512).ToArray(), b => Assert.Equal(0, b)); // the wrong-direction read wrote nothing
        var disk = new byte[512];
        image.Read(5 * 512, disk);
        Assert.Equal(pattern, disk);
        Assert.Equal(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk, transport.Status);
        Assert.True(line.Raises >= 4 + 3); // a config interrupt per violation, a used-buffer interrupt per completion
    }
}
