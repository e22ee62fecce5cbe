using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class RealModeTests
{
    [Fact]
    public void Software_interrupt_goes_through_the_ivt_and_iret_returns()
    {
        using var g = new TestGuest();
        // Handler for INT 0x21 at 0x2000:0x0010 (linear 0x20010).
        var h = new Assembler(16);
        h.mov(bx, 0xBEEF);
        h.iret();
        g.Memory.Write(0x20010UL, TestGuest.Assemble(h, 0x10));
        g.Memory.Write(0x21UL * 4, 0x2000_0010u);
        var a = new Assembler(16);
        a.mov(ax, 0x1000);
        a.mov(ds, ax);
        a.mov(__word_ptr[0x10], 0x1234); // DS-relative: linear 0x10010
        a.@int(0x21);
        a.mov(cx, __word_ptr[0x10]);
        a.pushf();
        a.pop(dx);
        a.hlt();
        g.Memory.Write(0x7C00UL, TestGuest.Assemble(a, 0x7C00));
        var st = new VcpuState
        {
            Rip = 0x7C00, Rflags = 0x202,
            Cs = SegmentRegister.RealMode(0, 0xB), Ds = SegmentRegister.RealMode(0), Es = SegmentRegister.RealMode(0),
            Ss = SegmentRegister.RealMode(0), Fs = SegmentRegister.RealMode(0), Gs = SegmentRegister.RealMode(0),
            Idt = new DescriptorTable { Limit = 0x3FF }, Gdt = new DescriptorTable { Limit = 0xFFFF },
        };
        st[Gpr.Rsp] = 0x7000;
        g.Cpu.SetState(st);
        // IF is set, but no interrupt controller exists: HLT exits.
        var exit = g.Cpu.Run();
        Assert.Equal(VcpuExitReason.Halt, exit.Reason);
        var s = g.Cpu.GetState();
        Assert.Equal(0xBEEFUL, s[Gpr.Rbx] & 0xFFFF);
        Assert.Equal(0x1234UL, s[Gpr.Rcx] & 0xFFFF);
        Assert.Equal(0x1234, g.Memory.Read<ushort>(0x10010));
        Assert.Equal(0x200UL, s[Gpr.Rdx] & 0x200); // IRET restored IF
        Assert.Equal(0x7000UL, s[Gpr.Rsp]);
    }
}
