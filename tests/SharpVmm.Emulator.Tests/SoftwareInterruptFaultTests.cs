using Iced.Intel;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// INT n that faults during its own delivery is a fault of the INT instruction: the saved RIP is the INT itself
/// (so a handler can repair the gate and return into it), and it is never promoted to a double fault.
/// </summary>
public class SoftwareInterruptFaultTests
{
    private static void ClearPresent(TestGuest g, int vector)
    {
        ulong at = TestGuest.IdtBase + (ulong)vector * 16;
        g.Memory.Write(at, g.Memory.Read<ulong>(at) & ~(1UL << 47));
    }

    private static void SetGateDpl(TestGuest g, int vector, int dpl)
    {
        ulong at = TestGuest.IdtBase + (ulong)vector * 16;
        g.Memory.Write(at, (g.Memory.Read<ulong>(at) & ~(3UL << 45)) | ((ulong)dpl << 45));
    }

    [Fact]
    public void Int_through_a_not_present_gate_raises_np_at_the_int_instruction()
    {
        using var g = new TestGuest();
        ClearPresent(g, 0x50);
        g.Load64(a =>
        {
            a.mov(eax, 1);   // 5 bytes
            a.@int(0x50);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(11UL, g.LoggedVector);
        Assert.Equal(0x50UL * 8 + 2, g.LoggedError);
        Assert.Equal(TestGuest.CodeBase + 5, g.LoggedRip);
    }

    [Fact]
    public void Int_below_the_gate_dpl_from_user_mode_raises_gp_at_the_int_instruction()
    {
        using var g = new TestGuest();
        SetGateDpl(g, 0x51, 0);
        g.Load64(a =>
        {
            a.nop();
            a.@int(0x51);
            a.hlt();
        }, user: true);
        g.RunToHalt();
        Assert.Equal(13UL, g.LoggedVector);
        Assert.Equal(0x51UL * 8 + 2, g.LoggedError);
        Assert.Equal(TestGuest.CodeBase + 1, g.LoggedRip);
        Assert.Equal((ulong)TestGuest.UserCs, g.LoggedCs);
    }

    [Fact]
    public void Int3_below_the_gate_dpl_reports_the_int3_itself()
    {
        using var g = new TestGuest();
        SetGateDpl(g, 3, 0);
        g.Load64(a =>
        {
            a.nop();
            a.int3();
            a.hlt();
        }, user: true);
        g.RunToHalt();
        Assert.Equal(13UL, g.LoggedVector);
        Assert.Equal(3UL * 8 + 2, g.LoggedError);
        Assert.Equal(TestGuest.CodeBase + 1, g.LoggedRip);
    }

    [Fact]
    public void Int_of_a_contributory_vector_through_a_not_present_gate_is_not_a_double_fault()
    {
        using var g = new TestGuest();
        ClearPresent(g, 13);
        g.Load64(a =>
        {
            a.@int(13);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(11UL, g.LoggedVector);
        Assert.Equal(13UL * 8 + 2, g.LoggedError);
        Assert.Equal(TestGuest.CodeBase, g.LoggedRip);
    }

    [Fact]
    public void Handler_that_repairs_the_gate_returns_into_the_int_which_then_runs()
    {
        using var g = new TestGuest();
        const ulong npHandler = 0x28000, target = 0x29000;
        // #NP handler: mark gate 0x52 present (in the IDT) and IRETQ past the error code back to the INT.
        var h = new Assembler(64);
        h.add(rsp, 8);
        h.mov(rax, TestGuest.IdtBase + 0x52 * 16);
        h.bts(__qword_ptr[rax], 47);
        h.iretq();
        g.Memory.Write(npHandler, TestGuest.Assemble(h, npHandler));
        g.Memory.Write(TestGuest.IdtBase + 11 * 16, (npHandler & 0xFFFF) | ((ulong)TestGuest.KernelCs << 16) | (0x8EUL << 40) | ((npHandler >> 16 & 0xFFFF) << 48));
        g.Memory.Write(TestGuest.IdtBase + 11 * 16 + 8, 0UL);
        var t = new Assembler(64);
        t.mov(r9, 0x52);
        t.hlt();
        g.Memory.Write(target, TestGuest.Assemble(t, target));
        g.Memory.Write(TestGuest.IdtBase + 0x52 * 16, (target & 0xFFFF) | ((ulong)TestGuest.KernelCs << 16) | (0x0EUL << 40) | ((target >> 16 & 0xFFFF) << 48));
        g.Memory.Write(TestGuest.IdtBase + 0x52 * 16 + 8, 0UL);
        g.Load64(a =>
        {
            a.@int(0x52);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x52UL, s[SharpVmm.Core.Cpu.Gpr.R9]);
    }
}
