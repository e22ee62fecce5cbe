using SharpVmm.Core.Cpu;
using SharpVmm.Core.Io;
using SharpVmm.Kvm.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Kvm.Tests;

/// <summary>The exit loop is a hot path: thousands of I/O and MMIO exits must not allocate.</summary>
public sealed class ExitLoopAllocationTests
{
    private sealed class CountingBus : IIoBus
    {
        public long Pio, Mmio;
        public void PioRead(ushort port, Span<byte> data) { data.Fill(1); Pio++; }
        public void PioWrite(ushort port, ReadOnlySpan<byte> data) => Pio++;
        public void MmioRead(ulong address, Span<byte> data) { data.Fill(2); Mmio++; }
        public void MmioWrite(ulong address, ReadOnlySpan<byte> data) => Mmio++;
    }

    [KvmFact]
    public void Thousands_of_io_and_mmio_exits_allocate_nothing()
    {
        const int Rounds = 2000;
        using var memory = SharpVmm.Memory.GuestMemory.Create([(0UL, 0x10_0000UL)]);
        var bus = new CountingBus();
        using var acc = KvmAccelerator.Create(memory, bus, new KvmOptions());
        var a = new Iced.Intel.Assembler(32);
        var loop = a.CreateLabel();
        a.mov(ecx, Rounds);
        a.Label(ref loop);
        a.@out(0x80, al);
        a.@in(al, 0x81);
        a.mov(__dword_ptr[0xD000_0000], eax);
        a.mov(eax, __dword_ptr[0xD000_0004]);
        a.dec(ecx);
        a.jnz(loop);
        a.hlt();
        memory.Write(0x1000, GuestCode.Assemble(a, 0x1000));
        using var vcpu = acc.CreateKvmVcpu(0);
        var s = vcpu.GetState();
        var code = new SegmentRegister { Limit = 0xFFFF_FFFF, Selector = 8, Type = 0xB, Present = true, S = true, Db = true, G = true };
        s.Cs = code;
        s.Ds = s.Es = s.Ss = code with { Selector = 0x10, Type = 0x3 };
        s.Cr0 |= 1;
        s.Rip = 0x1000;
        vcpu.SetState(s);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var exit = vcpu.Run();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(VcpuExitReason.Halt, exit.Reason);
        Assert.Equal((2L * Rounds, 2L * Rounds), (bus.Pio, bus.Mmio));
        Assert.True(vcpu.ExitCount >= 4 * Rounds);
        Assert.True(allocated < 1024, $"the exit loop allocated {allocated} bytes over {vcpu.ExitCount} exits");
    }
}
