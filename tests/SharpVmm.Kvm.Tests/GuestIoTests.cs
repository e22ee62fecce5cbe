using SharpVmm.Core.Cpu;
using SharpVmm.Kvm.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Kvm.Tests;

/// <summary>Port I/O and MMIO exits of small real guests reach the bus with the right ports, sizes and data.</summary>
public sealed class GuestIoTests
{
    [KvmFact]
    public void Real_mode_out_reaches_the_bus_then_hlt_returns_Halt()
    {
        using var g = new KvmTestGuest();
        g.Load(16, a =>
        {
            a.mov(al, 0x42);
            a.@out(0x10, al);
            a.mov(ax, 0x1234);
            a.mov(dx, 0x510);
            a.@out(dx, ax);
            a.mov(eax, 0xDEADBEEF);
            a.@out(dx, eax);
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu();

        var exit = vcpu.Run();

        Assert.Equal(VcpuExitReason.Halt, exit.Reason);
        var io = g.Bus.Snapshot();
        Assert.Equal(3, io.Count);
        Assert.Equal((false, true, 0x10UL, 0x42UL), (io[0].Mmio, io[0].Write, io[0].Address, io[0].Value));
        Assert.Equal((0x510UL, 2, 0x1234UL), (io[1].Address, io[1].Data.Length, io[1].Value));
        Assert.Equal((0x510UL, 4, 0xDEADBEEFUL), (io[2].Address, io[2].Data.Length, io[2].Value));
    }

    [KvmFact]
    public void Rep_outsb_delivers_every_byte_in_order()
    {
        using var g = new KvmTestGuest();
        g.Memory.Write(0x2000, "hello, kvm"u8);
        g.Load(16, a =>
        {
            a.cld();
            a.mov(si, 0x2000);
            a.mov(cx, 10);
            a.mov(dx, 0x3F8);
            a.rep.outsb();
            a.mov(si, 0x2000);
            a.mov(cx, 2);
            a.rep.outsw();
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu();

        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);

        var io = g.Bus.Snapshot();
        Assert.All(io, x => Assert.Equal((false, true, 0x3F8UL), (x.Mmio, x.Write, x.Address)));
        Assert.Equal("hello, kvm"u8.ToArray(), io.Take(10).SelectMany(x => x.Data).ToArray());
        Assert.All(io.Take(10), x => Assert.Single(x.Data));
        Assert.Equal([0x6568UL, 0x6C6CUL], io.Skip(10).Select(x => x.Value).ToArray());
        Assert.Equal(12, io.Count);
        Assert.Equal(0UL, vcpu.GetState()[Gpr.Rcx] & 0xFFFF);
    }

    [KvmFact]
    public void In_receives_the_bytes_the_bus_returns()
    {
        using var g = new KvmTestGuest();
        g.Bus.QueuePioRead(0x60, 0xAB);
        g.Bus.QueuePioRead(0x1F0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66);
        g.Load(16, a =>
        {
            a.@in(al, 0x60);
            a.mov(__byte_ptr[0x3000], al);
            a.mov(dx, 0x1F0);
            a.@in(ax, dx);
            a.mov(bx, ax);
            a.cld();
            a.mov(di, 0x3010);
            a.mov(cx, 2);
            a.rep.insw();
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu();

        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);

        Assert.Equal(0xAB, g.Memory.Read<byte>(0x3000));
        var s = vcpu.GetState();
        Assert.Equal(0x2211UL, s[Gpr.Rbx] & 0xFFFF);
        Assert.Equal(0x4433U, g.Memory.Read<ushort>(0x3010));
        Assert.Equal(0x6655U, g.Memory.Read<ushort>(0x3012));
        Assert.Equal(4, g.Bus.Snapshot().Count);
    }

    [KvmFact]
    public void Mmio_reads_and_writes_in_a_ram_hole_round_trip_through_the_bus()
    {
        const uint Hole = 0xD000_0000;
        using var g = new KvmTestGuest(ram: [(0UL, 0x10_0000UL), (0xE000_0000UL, 0x1000UL)]);
        g.Bus.SetMmioRead(Hole, 0x1122_3344);
        g.Bus.SetMmioRead(Hole + 8, 0x5A);
        g.Load(32, a =>
        {
            a.mov(eax, __dword_ptr[Hole]);
            a.mov(__dword_ptr[0x3000], eax);
            a.mov(__dword_ptr[Hole + 0x10], 0xCAFEBABE);
            a.add(eax, 1);
            a.mov(__dword_ptr[Hole + 0x20], eax);
            a.mov(bl, __byte_ptr[Hole + 8]);
            a.mov(__word_ptr[Hole + 0x30], 0x7788);
            a.mov(__dword_ptr[0xE000_0010], 0x600DF00D);
            a.hlt();
        });
        using var vcpu = g.ProtectedModeVcpu();

        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);

        var io = g.Bus.Snapshot();
        Assert.All(io, x => Assert.True(x.Mmio));
        Assert.Equal(
            [(false, (ulong)Hole, 4, 0x11223344UL), (true, Hole + 0x10UL, 4, 0xCAFEBABEUL), (true, Hole + 0x20UL, 4, 0x11223345UL),
             (false, Hole + 8UL, 1, 0x5AUL), (true, Hole + 0x30UL, 2, 0x7788UL)],
            io.Select(x => (x.Write, x.Address, x.Data.Length, x.Value)).ToArray());
        Assert.Equal(0x11223344U, g.Memory.Read<uint>(0x3000));
        Assert.Equal(0x600DF00DU, g.Memory.Read<uint>(0xE000_0010));
        Assert.Equal(0x5AUL, vcpu.GetState()[Gpr.Rbx] & 0xFF);
    }
}
