using SharpVmm.Core.Interrupts;
using SharpVmm.Core.State;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Acpi;
using SharpVmm.Devices.Interrupts;
using SharpVmm.Devices.Legacy;
using SharpVmm.Devices.Rtc;
using SharpVmm.Devices.Serial;
using SharpVmm.Devices.Tests.Interrupts;
using SharpVmm.Devices.Tests.Timers;
using SharpVmm.Devices.Timers;

namespace SharpVmm.Devices.Tests.State;

/// <summary>Each device saved, loaded into a fresh one, and then behaving exactly as the original would.</summary>
public sealed class DeviceStateTests
{
    internal static void Copy(IStateful from, IStateful to)
    {
        Assert.Equal(from.StateId, to.StateId);
        var w = new StateWriter();
        from.SaveState(w);
        var r = new StateReader(w.ToArray(), from.StateId);
        to.LoadState(r, from.StateVersion);
        r.ExpectEnd();
    }

    /// <summary>Every strict prefix of the saved state is refused with a StateFormatException, never another exception.</summary>
    internal static void TruncationsAreRefused(IStateful from, Func<IStateful> fresh)
    {
        var w = new StateWriter();
        from.SaveState(w);
        byte[] all = w.ToArray();
        for (int cut = 0; cut < all.Length; cut++)
        {
            var r = new StateReader(all[..cut], from.StateId);
            Assert.Throws<StateFormatException>(() =>
            {
                fresh().LoadState(r, from.StateVersion);
                r.ExpectEnd();
            });
        }
    }

    private sealed class NoControl : IVmControl
    {
        public int Resets;
        public void RequestPowerOff(int exitCode) { }
        public void RequestReset() => Resets++;
    }

    [Fact]
    public void Uart_keeps_its_registers_unread_input_and_pending_interrupt()
    {
        var line = new RecordingLine();
        var a = new Uart16550(null, line);
        a.Write(3, [0x80]); a.Write(0, [0x01]); a.Write(1, [0x00]); // divisor 1 (115200)
        a.Write(3, [0x03]);                                           // 8N1
        a.Write(4, [0x0B]);                                           // DTR, RTS, OUT2
        a.Write(7, [0x5A]);                                           // scratch
        a.Write(1, [0x01]);                                           // RDA interrupt
        a.Receive("abc"u8);
        Assert.True(line.Level);

        var restoredLine = new RecordingLine();
        var b = new Uart16550(null, restoredLine);
        Copy(a, b);
        Assert.True(restoredLine.Level); // the interrupt is still pending after the restore
        Span<byte> v = [0];
        b.Read(2, v); Assert.Equal(0x04, v[0] & 0x0F);   // IIR: received data available
        b.Read(5, v); Assert.Equal(0x01, v[0] & 0x01);   // LSR: data ready
        b.Read(7, v); Assert.Equal(0x5A, v[0]);
        b.Read(3, v); Assert.Equal(0x03, v[0]);
        b.Write(3, [0x83]); b.Read(0, v); Assert.Equal(0x01, v[0]); b.Write(3, [0x03]);
        foreach (byte expected in "abc"u8.ToArray()) { b.Read(0, v); Assert.Equal(expected, v[0]); }
        b.Read(5, v); Assert.Equal(0, v[0] & 0x01);
        Assert.False(restoredLine.Level); // drained: the line drops as on the original
        TruncationsAreRefused(a, () => new Uart16550(null, null));
    }

    [Fact]
    public void Pit_counts_on_from_the_same_value_and_keeps_interrupting()
    {
        var clock = new GuestClock();
        using var timers = new TimerService(clock);
        var irq = new RecordingLine();
        var a = new Pit8254(timers, irq);
        a.Write(3, [0x34]); a.Write(0, [0x00]); a.Write(0, [0x80]); // channel 0, mode 2, count 0x8000 (~27 ms)
        a.Write(3, [0xB6]); a.Write(2, [0x34]); a.Write(2, [0x12]); // channel 2, mode 3, count 0x1234
        new SystemControlPort(a).Write(0, [0x01]);                   // gate channel 2 on
        Thread.Sleep(5);
        clock.Pause();
        int Latched(Pit8254 p, int ch) { p.Write(3, [(byte)(ch << 6)]); Span<byte> lo = [0], hi = [0]; p.Read((ulong)ch, lo); p.Read((ulong)ch, hi); return lo[0] | hi[0] << 8; }
        int c0 = Latched(a, 0), c2 = Latched(a, 2);
        Assert.InRange(c0, 1, 0x7FFF);

        var clock2 = new GuestClock();
        clock2.Pause();
        clock2.Restore(clock.NowNs);
        using var timers2 = new TimerService(clock2);
        var irq2 = new RecordingLine();
        var b = new Pit8254(timers2, irq2);
        Copy(a, b);
        Assert.Equal(c0, Latched(b, 0));
        Assert.Equal(c2, Latched(b, 2));
        Assert.True(b.Channel2Gate);
        clock2.Resume();
        timers2.Kick();
        Assert.True(SpinWait.SpinUntil(() => irq2.Rises >= 2, TimeSpan.FromSeconds(10)), "channel 0 stopped interrupting after the restore");
        TruncationsAreRefused(a, () => new Pit8254(timers2, new RecordingLine()));
    }

    [Fact]
    public void Rtc_keeps_the_guest_wall_clock_its_cmos_bytes_and_flags()
    {
        var clock = new GuestClock();
        using var timers = new TimerService(clock);
        var a = new CmosRtc(timers, new RecordingLine(), new DateTime(2031, 5, 17, 10, 20, 30, DateTimeKind.Utc));
        a.WriteRegister(CmosRtc.RegB, 0x06);    // binary, 24 h
        a.WriteRegister(0x40, 0x99);            // a byte of CMOS RAM the guest owns
        a.WriteRegister(CmosRtc.RegSecondsAlarm, 45);
        a.Write(0, [0x8D]);                     // index 0x0D with NMI disabled
        clock.Pause();
        DateTime saved = a.Now;

        var clock2 = new GuestClock();
        clock2.Pause();
        clock2.Restore(clock.NowNs);
        using var timers2 = new TimerService(clock2);
        // The new process's host time is years away: the guest must still see its own clock.
        var b = new CmosRtc(timers2, new RecordingLine(), new DateTime(1999, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Copy(a, b);
        Assert.Equal(saved, b.Now);
        Assert.Equal(0x99, b.ReadRegister(0x40));
        Assert.Equal(45, b.ReadRegister(CmosRtc.RegSecondsAlarm));
        Assert.Equal(2031 % 100, b.ReadRegister(CmosRtc.RegYear));
        Assert.Equal(17, b.ReadRegister(CmosRtc.RegDayOfMonth));
        Assert.True(b.NmiDisabled);
        Span<byte> index = [0];
        b.Read(0, index);
        Assert.Equal(0x8D, index[0]);
        TruncationsAreRefused(a, () => new CmosRtc(timers2, new RecordingLine()));
    }

    [Fact]
    public void I8042_and_acpi_sleep_keep_what_the_guest_would_read_next()
    {
        var a = new I8042Controller(new NoControl());
        a.CommandPort.Write(0, [0x60]); a.DataPort.Write(0, [0x47]); // write config byte
        a.CommandPort.Write(0, [0x20]);                               // read it back: queued for the data port
        var b = new I8042Controller(new NoControl());
        Copy(a, b);
        Span<byte> v = [0];
        b.CommandPort.Read(0, v); Assert.Equal(0x01, v[0] & 0x01); // output buffer full
        b.DataPort.Read(0, v); Assert.Equal(0x47, v[0]);
        TruncationsAreRefused(a, () => new I8042Controller(new NoControl()));

        var s = new AcpiSleepDevice(_ => { });
        s.Write(AcpiSleepDevice.ControlOffset, [(byte)(AcpiSleepDevice.SleepEnable | 3 << AcpiSleepDevice.SleepTypeShift)]); // S3: answered with a wake
        var t = new AcpiSleepDevice(_ => { });
        Copy(s, t);
        t.Read(AcpiSleepDevice.StatusOffset, v);
        Assert.Equal(AcpiSleepDevice.WakeStatus, v[0]);
        Assert.Equal(1, t.IgnoredSleepRequests);
    }

    private static ulong Dest(int apicId) => (ulong)apicId << 56;

    [Fact]
    public void Irqchip_keeps_pic_elcr_ioapic_routes_line_levels_and_each_lapic()
    {
        using var a = new IrqChipRig(cpus: 2);
        a.Chip.Pic.InitLikeLinux();
        a.Chip.Pic.Out(0x21, 0xFA);          // unmask IRQ0 and IRQ2
        a.Chip.Pic.Out(0x4D1, 0x0E);         // IRQ 9-11 level-triggered
        a.Apic(0).Enable();
        a.Apic(1).Enable();
        a.Chip.IoApic.Redirect(4, 0x31 | 1ul << 15 | Dest(1)); // pin 4: level, vector 0x31 to CPU 1
        a.Chip.IoApic.Redirect(9, 0x39 | Dest(0));
        a.Chip.SetIrq(4, true);              // the UART's line is high and stays high
        a.Apic(0).Write(ApicRegisters.TimerDivide, 0xB);     // divide by 1
        a.Apic(0).Write(ApicRegisters.LvtTimer, 0x40);       // one-shot, vector 0x40
        a.Apic(0).Write(ApicRegisters.TimerInitialCount, 2_000_000_000); // 2 s
        a.Apic(0).Write(ApicRegisters.Tpr, 0x20);
        Assert.True(a.Apic(1).IrrBit(0x31));
        a.Clock.Pause();
        uint count = a.Apic(0).Read(ApicRegisters.TimerCurrentCount);
        var pic = a.Chip.Pic.Snapshot();

        using var b = new IrqChipRig(cpus: 2);
        b.Clock.Pause();
        b.Clock.Restore(a.Clock.NowNs);
        Copy(a.Chip, b.Chip);
        Assert.Equal(pic, b.Chip.Pic.Snapshot());
        Assert.Equal(0x0E, b.Chip.Pic.In(0x4D1));
        Assert.Equal(0xFA, b.Chip.Pic.In(0x21));
        for (int pin = 0; pin < IoApic.PinCount; pin++) Assert.Equal(a.Chip.IoApic.GetRedirection(pin), b.Chip.IoApic.GetRedirection(pin));
        Assert.NotEqual(0ul, b.Chip.IoApic.GetRedirection(4) & 1ul << 14); // remote IRR: CPU 1 has it in service
        Assert.Equal(count, b.Apic(0).Read(ApicRegisters.TimerCurrentCount));
        Assert.Equal(0x20u, b.Apic(0).Read(ApicRegisters.Tpr));

        // CPU 1 takes the interrupt and EOIs it; the line is still high, so the IOAPIC delivers it again.
        Assert.True(b.Apic(1).HasInterrupt);
        Assert.Equal(0x31, b.Apic(1).Acknowledge());
        Assert.False(b.Apic(1).IrrBit(0x31));
        b.Apic(1).Write(ApicRegisters.Eoi, 0);
        Assert.True(b.Apic(1).IrrBit(0x31));

        // The LAPIC timer fires in the restored chip at the saved deadline.
        b.Clock.Resume();
        b.Timers.Kick();
        Assert.True(SpinWait.SpinUntil(() => b.Apic(0).IrrBit(0x40), TimeSpan.FromSeconds(10)), "the restored APIC timer never fired");

        using var c = new IrqChipRig(cpus: 1);
        var w = new StateWriter();
        a.Chip.SaveState(w);
        var e = Assert.Throws<StateFormatException>(() => c.Chip.LoadState(new StateReader(w.ToArray()), 1));
        Assert.Contains("2 local APICs", e.Message);
        TruncationsAreRefused(a.Chip, () => b.Chip);
    }
}
