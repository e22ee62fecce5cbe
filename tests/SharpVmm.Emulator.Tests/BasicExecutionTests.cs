using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class BasicExecutionTests
{
    [Fact]
    public void Loop_sums_numbers_and_halts()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            var loop = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 100);
            a.Label(ref loop);
            a.add(rax, rcx);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(5050UL, s[Gpr.Rax]);
        Assert.Equal(0UL, s[Gpr.Rcx]);
        Assert.Equal(0UL, g.ExceptionCount);
    }

    [Fact]
    public void Port_io_goes_to_the_bus()
    {
        using var g = new TestGuest();
        g.Bus.PortValues[0x71] = 0x5A;
        g.Load64(a =>
        {
            a.mov(al, 0x42);
            a.@out(0x80, al);
            a.mov(dx, 0x3F8);
            a.mov(eax, 0x12345678);
            a.@out(dx, eax);
            a.@in(al, 0x71);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal([(0x80, 0x42UL, 1), (0x3F8, 0x12345678UL, 4)], g.Bus.PortWrites);
        Assert.Equal(0x1234565AUL, s[Gpr.Rax]);
    }

    [Fact]
    public void Mmio_outside_ram_goes_to_the_bus()
    {
        using var g = new TestGuest(ramSize: 64 << 20);
        g.Bus.MmioReadValue = addr => addr == 0x3000_0010 ? 0xABCDUL : 0;
        g.Load64(a =>
        {
            a.mov(eax, 0x3000_0000);
            a.mov(__dword_ptr[rax], 0x11223344);
            a.mov(ebx, __dword_ptr[rax + 0x10]);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0xABCDUL, s[Gpr.Rbx]);
        Assert.Contains((0x3000_0000UL, 0x11223344UL, 4, true), g.Bus.Mmio);
    }
}
