using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>The STI interrupt shadow covers exactly one instruction; the boundary after it takes a pending interrupt.</summary>
public class InterruptShadowTests
{
    [Fact]
    public void Interrupt_pending_at_sti_is_taken_after_the_shadowed_instruction_even_if_cli_follows()
    {
        var apic = new FakeLocalApic(0);
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = _ => apic });
        apic.Raise(0x41);
        ulong cliAt = 0;
        g.Load64(a =>
        {
            a.sti();
            a.nop();         // the shadow
            var cli = a.CreateLabel();
            a.Label(ref cli);
            a.cli();         // the interrupt must already have been taken before this
            a.mov(r10, 1);
            a.hlt();
        });
        cliAt = TestGuest.CodeBase + 2; // STI (1 byte) + NOP (1 byte)
        g.RunToHalt();
        Assert.Equal(0x41UL, g.LoggedVector);
        Assert.Equal(cliAt, g.LoggedRip);
        Assert.Equal(1, apic.Acknowledged);
        Assert.Equal(0UL, g.Cpu.GetState()[Gpr.R10]);
    }

    [Fact]
    public void Interrupt_arriving_in_the_shadow_of_sti_before_a_long_block_is_taken_after_one_instruction()
    {
        var apic = new FakeLocalApic(0);
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = _ => apic });
        apic.Raise(0x42);
        g.Load64(a =>
        {
            a.sti();
            a.mov(r8, 1);    // the shadow
            a.mov(r9, 2);    // same block: must not run before the interrupt
            a.mov(r10, 3);
            a.cli();
            a.hlt();
        });
        g.RunToHalt();
        var s = g.Cpu.GetState();
        Assert.Equal(0x42UL, g.LoggedVector);
        Assert.Equal(1UL, s[Gpr.R8]);
        Assert.Equal(0UL, s[Gpr.R9]);
        Assert.Equal(0UL, s[Gpr.R10]);
    }
}
