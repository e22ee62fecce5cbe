using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class RunControlTests
{
    [Fact]
    public void Kick_from_another_thread_returns_Kicked_from_an_endless_loop()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            var l = a.CreateLabel();
            a.Label(ref l);
            a.inc(rax);
            a.jmp(l);
        });
        using var t = new Timer(_ => g.Cpu.Kick(), null, 100, Timeout.Infinite);
        var exit = g.Cpu.Run();
        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.True(g.Cpu.GetState()[Gpr.Rax] > 0);
    }

    [Fact]
    public void Kick_before_run_is_remembered()
    {
        using var g = new TestGuest();
        g.Load64(a => a.hlt());
        g.Cpu.Kick();
        Assert.Equal(VcpuExitReason.Kicked, g.Cpu.Run().Reason);
        Assert.Equal(VcpuExitReason.Halt, g.Cpu.Run().Reason);
    }

    [Fact]
    public void Hlt_with_interrupts_enabled_waits_for_the_apic_and_takes_the_interrupt()
    {
        var apic = new FakeLocalApic(0);
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = _ => apic });
        g.Load64(a =>
        {
            a.sti();
            a.hlt();
            a.mov(r9, 0x99);
            a.cli();
            a.hlt();
        });
        // Vector 0x40's handler records and halts with IF=0 (interrupt gates clear IF).
        using var t = new Timer(_ => apic.Raise(0x40), null, 150, Timeout.Infinite);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var exit = g.Cpu.Run();
        Assert.Equal(VcpuExitReason.Halt, exit.Reason);
        Assert.True(sw.ElapsedMilliseconds >= 100, "HLT returned before the interrupt arrived");
        Assert.Equal(0x40UL, g.LoggedVector);
        Assert.Equal(TestGuest.CodeBase + 2, g.LoggedRip); // return address is after the HLT
        Assert.Equal(1, apic.Acknowledged);
    }

    [Fact]
    public void Interrupt_shadow_after_sti_lets_the_next_instruction_run_first()
    {
        var apic = new FakeLocalApic(0);
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = _ => apic });
        apic.Raise(0x41);
        g.Load64(a =>
        {
            a.sti();
            a.mov(r10, 1);
            a.mov(r11, 2);
            a.hlt();
        });
        g.RunToHalt();
        var s = g.Cpu.GetState();
        Assert.Equal(0x41UL, g.LoggedVector);
        Assert.Equal(1UL, s[Gpr.R10]); // the instruction after STI always executes
    }

    [Fact]
    public void Nmi_is_delivered_even_with_interrupts_disabled()
    {
        var apic = new FakeLocalApic(0);
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = _ => apic });
        g.Load64(a =>
        {
            var l = a.CreateLabel();
            a.cli();
            a.Label(ref l);
            a.pause();
            a.jmp(l);
        });
        using var t = new Timer(_ => apic.RaiseNmi(), null, 50, Timeout.Infinite);
        g.RunToHalt();
        Assert.Equal(2UL, g.LoggedVector);
    }

    [Fact]
    public void Application_processor_waits_for_sipi_then_starts_in_real_mode()
    {
        var apics = new[] { new FakeLocalApic(0), new FakeLocalApic(1) };
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = i => apics[i] });
        using var ap = g.Accel.CreateVcpu(1);
        // Trampoline at 0x9000 (vector 9): real-mode code writes a marker and halts with IF=0.
        g.Memory.Write(0x9000UL, new byte[] { 0xB8, 0x34, 0x12, 0xA3, 0x00, 0x0E, 0xF4 }); // mov ax,0x1234; mov [0xE00],ax; hlt
        using var t = new Timer(_ => { apics[1].SendInit(); apics[1].SendStartup(9); }, null, 50, Timeout.Infinite);
        var exit = ap.Run();
        Assert.Equal(VcpuExitReason.Halt, exit.Reason);
        Assert.Equal((ushort)0x1234, g.Memory.Read<ushort>(0xE00)); // DS is still 0 after SIPI
        Assert.Equal((ushort)0x900, ap.GetState().Cs.Selector);
    }
}
