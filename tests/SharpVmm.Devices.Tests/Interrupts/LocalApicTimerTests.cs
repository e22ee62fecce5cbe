using SharpVmm.Devices.Interrupts;

namespace SharpVmm.Devices.Tests.Interrupts;

public class LocalApicTimerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private const uint Periodic = 1u << 17, TscDeadline = 2u << 17;

    private static (LocalApic Cpu, ManualResetEventSlim Woken) Prepare(IrqChipRig rig)
    {
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        var woken = new ManualResetEventSlim();
        cpu.Wake = woken.Set;
        return (cpu, woken);
    }

    [Fact]
    public void One_shot_counts_down_from_guest_time_and_fires_once()
    {
        using var rig = new IrqChipRig(cpus: 1);
        var (cpu, woken) = Prepare(rig);
        cpu.Write(ApicRegisters.LvtTimer, 0xEC);
        cpu.Write(ApicRegisters.TimerDivide, 0x0B); // divide by 1: 1 count per ns
        long t0 = rig.Clock.NowNs;
        cpu.Write(ApicRegisters.TimerInitialCount, 20_000_000); // 20 ms
        long t1 = rig.Clock.NowNs;

        long before = rig.Clock.NowNs;
        uint count = cpu.Read(ApicRegisters.TimerCurrentCount);
        long after = rig.Clock.NowNs;
        if (count != 0)
        {
            // Whatever the scheduling delays, the count agrees with the clock readings around it.
            Assert.InRange(20_000_000 - (long)count, before - t1 - 1, after - t0 + 1);
        }

        Assert.True(woken.Wait(Patience));
        Assert.True(rig.Clock.NowNs - t0 >= 20_000_000);
        Assert.Equal(0u, cpu.Read(ApicRegisters.TimerCurrentCount));
        Assert.Equal(0xEC, cpu.Acknowledge());
        cpu.Write(ApicRegisters.Eoi, 0);

        woken.Reset();
        Assert.False(woken.Wait(TimeSpan.FromMilliseconds(60))); // one-shot: no second expiry
        Assert.False(cpu.HasInterrupt);
    }

    [Fact]
    public void Divider_scales_the_count_rate()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        cpu.Write(ApicRegisters.LvtTimer, ApicRegisters.LvtMasked | 0xEC);
        cpu.Write(ApicRegisters.TimerDivide, 0x0A); // divide by 128
        Assert.Equal(0x0Au, cpu.Read(ApicRegisters.TimerDivide));
        long t0 = rig.Clock.NowNs;
        cpu.Write(ApicRegisters.TimerInitialCount, 0xFFFF_FFFF);
        long t1 = rig.Clock.NowNs;
        Thread.Sleep(20);
        long t2 = rig.Clock.NowNs;
        uint count = cpu.Read(ApicRegisters.TimerCurrentCount);
        long t3 = rig.Clock.NowNs;
        long consumed = 0xFFFF_FFFFL - count;
        Assert.InRange(consumed, (t2 - t1) / 128 - 1, (t3 - t0) / 128 + 1);
    }

    [Fact]
    public void Periodic_timer_fires_repeatedly_and_keeps_counting()
    {
        using var rig = new IrqChipRig(cpus: 1);
        var (cpu, woken) = Prepare(rig);
        cpu.Write(ApicRegisters.LvtTimer, Periodic | 0xED);
        cpu.Write(ApicRegisters.TimerDivide, 0x03); // divide by 16
        cpu.Write(ApicRegisters.TimerInitialCount, 312_500); // 5 ms
        for (int i = 0; i < 3; i++)
        {
            Assert.True(woken.Wait(Patience));
            woken.Reset();
            Assert.Equal(0xED, cpu.Acknowledge());
            cpu.Write(ApicRegisters.Eoi, 0);
        }
        Assert.NotEqual(0u, cpu.Read(ApicRegisters.TimerInitialCount));
        Assert.InRange(cpu.Read(ApicRegisters.TimerCurrentCount), 1u, 312_500u);

        cpu.Write(ApicRegisters.TimerInitialCount, 0); // stops it
        Assert.Equal(0u, cpu.Read(ApicRegisters.TimerCurrentCount));
    }

    [Fact]
    public void Masked_timer_counts_but_does_not_interrupt()
    {
        using var rig = new IrqChipRig(cpus: 1);
        var (cpu, woken) = Prepare(rig);
        cpu.Write(ApicRegisters.LvtTimer, ApicRegisters.LvtMasked | 0xEC);
        cpu.Write(ApicRegisters.TimerDivide, 0x0B);
        cpu.Write(ApicRegisters.TimerInitialCount, 5_000_000);
        Thread.Sleep(40);
        while (cpu.Read(ApicRegisters.TimerCurrentCount) != 0) Thread.Sleep(5);
        Thread.Sleep(30); // give a wrongly delivered interrupt time to show up
        Assert.False(woken.IsSet);
        Assert.False(cpu.HasInterrupt);
    }

    [Fact]
    public void Tsc_deadline_fires_at_the_deadline_and_clears_the_msr()
    {
        using var rig = new IrqChipRig(cpus: 1);
        var (cpu, woken) = Prepare(rig);
        Assert.True(cpu.TryWriteMsr(0x6E0, 12345)); // not in deadline mode: ignored
        Assert.True(cpu.TryReadMsr(0x6E0, out ulong value));
        Assert.Equal(0ul, value);

        cpu.Write(ApicRegisters.LvtTimer, TscDeadline | 0xEE);
        rig.Clock.Pause(); // read the armed deadline back before it can pass
        ulong deadline = rig.Clock.ReadTsc() + rig.Clock.TscHz / 100; // 10 ms
        Assert.True(cpu.TryWriteMsr(0x6E0, deadline));
        Assert.True(cpu.TryReadMsr(0x6E0, out value));
        Assert.Equal(deadline, value);
        cpu.Write(ApicRegisters.TimerInitialCount, 1000); // ignored in deadline mode
        Assert.Equal(0u, cpu.Read(ApicRegisters.TimerInitialCount));
        rig.Clock.Resume();
        rig.Timers.Kick();

        Assert.True(woken.Wait(Patience));
        Assert.True(rig.Clock.ReadTsc() >= deadline);
        Assert.Equal(0xEE, cpu.Acknowledge());
        Assert.True(cpu.TryReadMsr(0x6E0, out value));
        Assert.Equal(0ul, value);
    }

    [Fact]
    public void Rewriting_the_deadline_replaces_the_earlier_one_and_zero_disarms()
    {
        using var rig = new IrqChipRig(cpus: 1);
        var (cpu, woken) = Prepare(rig);
        cpu.Write(ApicRegisters.LvtTimer, TscDeadline | 0xEE);
        rig.Clock.Pause(); // no host stall can let the first deadline pass before it is withdrawn
        cpu.TryWriteMsr(0x6E0, rig.Clock.ReadTsc() + rig.Clock.TscHz / 50);
        cpu.TryWriteMsr(0x6E0, 0);
        rig.Clock.Resume();
        Assert.False(woken.Wait(TimeSpan.FromMilliseconds(80)));

        cpu.TryWriteMsr(0x6E0, rig.Clock.ReadTsc() + rig.Clock.TscHz * 100); // far future
        cpu.TryWriteMsr(0x6E0, rig.Clock.ReadTsc() + rig.Clock.TscHz / 200); // sooner
        Assert.True(woken.Wait(Patience));
        Assert.Equal(0xEE, cpu.Acknowledge());
    }

    [Fact]
    public void Largest_tsc_deadline_is_accepted_and_never_fires()
    {
        using var rig = new IrqChipRig(cpus: 1);
        var (cpu, woken) = Prepare(rig);
        cpu.Write(ApicRegisters.LvtTimer, TscDeadline | 0xEE);
        Assert.True(cpu.TryWriteMsr(0x6E0, ulong.MaxValue));
        Assert.False(woken.Wait(TimeSpan.FromMilliseconds(50)));
        Assert.True(cpu.TryReadMsr(0x6E0, out ulong value));
        Assert.Equal(ulong.MaxValue, value);
    }

    [Fact]
    public void Leaving_deadline_mode_disarms_the_timer()
    {
        using var rig = new IrqChipRig(cpus: 1);
        var (cpu, woken) = Prepare(rig);
        cpu.Write(ApicRegisters.LvtTimer, TscDeadline | 0xEE);
        rig.Clock.Pause();
        cpu.TryWriteMsr(0x6E0, rig.Clock.ReadTsc() + rig.Clock.TscHz / 50);
        cpu.Write(ApicRegisters.LvtTimer, 0xEE); // one-shot
        rig.Clock.Resume();
        Assert.False(woken.Wait(TimeSpan.FromMilliseconds(80)));
    }

    [Fact]
    public void Paused_clock_holds_the_timer()
    {
        using var rig = new IrqChipRig(cpus: 1);
        var (cpu, woken) = Prepare(rig);
        cpu.Write(ApicRegisters.LvtTimer, 0xEC);
        cpu.Write(ApicRegisters.TimerDivide, 0x0B);
        rig.Clock.Pause();
        cpu.Write(ApicRegisters.TimerInitialCount, 10_000_000);
        uint frozen = cpu.Read(ApicRegisters.TimerCurrentCount);
        Assert.False(woken.Wait(TimeSpan.FromMilliseconds(60)));
        Assert.Equal(frozen, cpu.Read(ApicRegisters.TimerCurrentCount));
        rig.Clock.Resume();
        rig.Timers.Kick();
        Assert.True(woken.Wait(Patience));
    }
}
