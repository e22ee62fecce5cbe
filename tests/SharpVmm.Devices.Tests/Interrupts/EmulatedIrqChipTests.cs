using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Interrupts;
using SharpVmm.Devices.Timers;

namespace SharpVmm.Devices.Tests.Interrupts;

public class EmulatedIrqChipTests
{
    private static ulong Dest(int apicId) => (ulong)apicId << 56;

    [Fact]
    public void Gsi0_goes_to_pic_irq0_and_ioapic_pin2()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        rig.Chip.Pic.InitLikeLinux();
        rig.Chip.Pic.Out(0x21, 0x00);
        cpu.Enable();
        cpu.Write(ApicRegisters.LvtLint0, ApicRegisters.LvtMasked | 0x700); // IOAPIC mode: PIC not taken
        rig.Chip.IoApic.Redirect(2, 0x30 | Dest(0));
        rig.Chip.IoApic.Redirect(0, 0x50 | Dest(0));

        rig.Chip.SetIrq(0, true);
        rig.Chip.SetIrq(0, false);

        Assert.Equal(1, rig.Chip.Pic.Snapshot().Irr & 1);
        Assert.True(cpu.IrrBit(0x30));
        Assert.False(cpu.IrrBit(0x50));
    }

    [Fact]
    public void Gsi2_and_gsi0_share_ioapic_pin2_and_pic_ir2_stays_the_cascade()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        rig.Chip.IoApic.Redirect(2, 0x30 | (1ul << 15) | Dest(0)); // level, so the OR is visible as remote IRR
        rig.Chip.SetIrq(2, true);
        rig.Chip.SetIrq(0, true);
        rig.Chip.SetIrq(2, false);
        Assert.Equal(0x30, cpu.Acknowledge());
        cpu.Write(ApicRegisters.Eoi, 0);
        Assert.True(cpu.HasInterrupt); // GSI 0 still holds pin 2 high
        Assert.Equal(0x30, cpu.Acknowledge());
        rig.Chip.SetIrq(0, false);
        cpu.Write(ApicRegisters.Eoi, 0);
        Assert.False(cpu.HasInterrupt);
        Assert.Equal(0, rig.Chip.Pic.Snapshot().Irr & 0x4);
    }

    [Fact]
    public void Isa_gsi_reaches_both_controllers_and_high_gsi_only_the_ioapic()
    {
        using var rig = new IrqChipRig(cpus: 2);
        rig.Chip.Pic.InitLikeLinux();
        LocalApic cpu1 = rig.Apic(1);
        cpu1.Enable();
        rig.Chip.IoApic.Redirect(4, 0x34 | Dest(1));
        rig.Chip.IoApic.Redirect(20, 0x44 | Dest(1));

        var line = new IrqLine(rig.Chip, 4);
        line.Pulse();
        Assert.Equal(1 << 4, rig.Chip.Pic.Snapshot().Irr & (1 << 4));
        Assert.True(cpu1.IrrBit(0x34));

        new IrqLine(rig.Chip, 20).Pulse();
        Assert.True(cpu1.IrrBit(0x44));
    }

    [Fact]
    public void Local_apic_lookup_matches_the_emulator_contract()
    {
        using var rig = new IrqChipRig(cpus: 2);
        Func<int, ILocalApic?> lookup = rig.Chip.LocalApicFor;
        Assert.Same(rig.Apic(1), lookup(1));
        Assert.Null(lookup(2));
        Assert.Null(lookup(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Chip.GetLocalApic(2));
    }

    [Fact]
    public void Cpu_count_is_validated()
    {
        using var timers = new TimerService(new Core.Time.GuestClock());
        Assert.Throws<ArgumentOutOfRangeException>(() => new EmulatedIrqChip(timers, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EmulatedIrqChip(timers, 255));
    }

    [Fact]
    public void Pit_tick_reaches_a_halted_cpu_through_the_ioapic_as_linux_programs_it()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        rig.Chip.IoApic.Redirect(2, 0x30 | Dest(0));
        using var woken = new ManualResetEventSlim();
        cpu.Wake = woken.Set;
        var pit = new Pit8254(rig.Timers, new IrqLine(rig.Chip, 0));
        pit.Write(3, [0x34]); // channel 0, rate generator
        pit.Write(0, [0x9B]);
        pit.Write(0, [0x2E]); // 11931 ticks = 10 ms (HZ=100)
        Assert.True(woken.Wait(TimeSpan.FromSeconds(10)));
        Assert.Equal(0x30, cpu.Acknowledge());
        cpu.Write(ApicRegisters.Eoi, 0);
        woken.Reset();
        Assert.True(woken.Wait(TimeSpan.FromSeconds(10))); // and the next tick
        Assert.Equal(0x30, cpu.Acknowledge());
        pit.Write(3, [0x30]); // stop
    }

    [Fact]
    public void Pit_tick_reaches_the_bsp_through_the_pic_in_virtual_wire_mode()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic bsp = rig.Apic(0);
        rig.Chip.Pic.InitLikeLinux();
        rig.Chip.Pic.Out(0x21, 0xFE); // only IRQ0
        using var woken = new ManualResetEventSlim();
        bsp.Wake = woken.Set;
        var pit = new Pit8254(rig.Timers, new IrqLine(rig.Chip, Pit8254.Gsi));
        pit.Write(3, [0x34]);
        pit.Write(0, [0x9B]);
        pit.Write(0, [0x2E]);
        for (int i = 0; i < 2; i++)
        {
            Assert.True(woken.Wait(TimeSpan.FromSeconds(10)));
            woken.Reset();
            Assert.Equal(0x30, bsp.Acknowledge());
            rig.Chip.Pic.Out(0x20, 0x20);
        }
        Assert.False(rig.Apic(1).HasInterrupt);
        pit.Write(3, [0x30]);
    }

    [Fact]
    public void Concurrent_raises_acknowledges_and_eois_do_not_deadlock_or_lose_level_interrupts()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic a = rig.Apic(0), b = rig.Apic(1);
        a.Enable();
        b.Enable();
        rig.Chip.Pic.InitLikeLinux();
        rig.Chip.Pic.Out(0x21, 0x00);
        rig.Chip.IoApic.Redirect(17, 0x35 | (1ul << 15) | Dest(0));
        rig.Chip.IoApic.Redirect(18, 0x36 | Dest(1));
        const int Rounds = 2000;
        int servedA = 0;
        var cpuA = new Thread(() =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                rig.Chip.SetIrq(17, true);
                while (a.HasInterrupt)
                {
                    int v = a.Acknowledge();
                    if (v == 0x35)
                    {
                        servedA++;
                        rig.Chip.SetIrq(17, false);
                    }
                    else if (v == 0x33)
                    {
                        rig.Chip.Pic.Out(0x20, 0x20); // the PIC's IRQ3 came through LINT0
                    }
                    a.Write(ApicRegisters.Eoi, 0);
                }
                a.Write(ApicRegisters.IcrHigh, 1u << 24);
                a.Write(ApicRegisters.IcrLow, 0x60);
            }
        });
        var cpuB = new Thread(() =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                rig.Chip.SetIrq(18, true);
                rig.Chip.SetIrq(18, false);
                while (b.HasInterrupt)
                {
                    b.Acknowledge();
                    b.Write(ApicRegisters.Eoi, 0);
                }
                b.Write(ApicRegisters.IcrHigh, 0);
                b.Write(ApicRegisters.IcrLow, 0x61);
                rig.Chip.SetIrq(3, true);
                rig.Chip.SetIrq(3, false);
            }
        });
        cpuA.Start();
        cpuB.Start();
        Assert.True(cpuA.Join(TimeSpan.FromSeconds(60)));
        Assert.True(cpuB.Join(TimeSpan.FromSeconds(60)));
        Assert.Equal(Rounds, servedA);
        Assert.Equal(0ul, rig.Chip.IoApic.GetRedirection(17) & (1ul << 14));
    }
}
