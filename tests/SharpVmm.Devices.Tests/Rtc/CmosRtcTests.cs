using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Rtc;
using SharpVmm.Devices.Timers;

namespace SharpVmm.Devices.Tests.Rtc;

public sealed class CmosRtcTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly GuestClock _clock = new();
    private readonly TimerService _timers;
    private readonly Irq8Line _irq8 = new();

    public CmosRtcTests() => _timers = new TimerService(_clock);

    public void Dispose() => _timers.Dispose();

    private sealed class Irq8Line : IInterruptLine
    {
        public ManualResetEventSlim Raised { get; } = new();
        public volatile bool Level;
        public void Raise() { Level = true; Raised.Set(); }
        public void Lower() => Level = false;
        public void Pulse() { Raise(); Lower(); }
    }

    private static byte Read(CmosRtc rtc, byte index)
    {
        rtc.Write(0, [index]);
        Span<byte> b = [0];
        rtc.Read(1, b);
        return b[0];
    }

    private static void Write(CmosRtc rtc, byte index, byte value)
    {
        rtc.Write(0, [index]);
        rtc.Write(1, [value]);
    }

    private static int Bcd(byte b) => (b >> 4) * 10 + (b & 0xF);

    private static DateTime ReadBcdTime(CmosRtc rtc)
    {
        int century = Bcd(Read(rtc, 0x32));
        return new DateTime(century * 100 + Bcd(Read(rtc, 0x09)), Bcd(Read(rtc, 0x08)), Bcd(Read(rtc, 0x07)),
            Bcd(Read(rtc, 0x04)), Bcd(Read(rtc, 0x02)), Bcd(Read(rtc, 0x00)), DateTimeKind.Utc);
    }

    [Fact]
    public void Reads_host_utc_time_in_bcd_24_hour_by_default()
    {
        var rtc = new CmosRtc(_timers, _irq8);
        DateTime before = DateTime.UtcNow;
        DateTime read = ReadBcdTime(rtc);
        DateTime after = DateTime.UtcNow;
        Assert.InRange(read, before.AddSeconds(-2), after.AddSeconds(2));
        Assert.Equal(0x02, Read(rtc, 0x0B));
        Assert.Equal(0x80, Read(rtc, 0x0D));
        Assert.Equal(0x26, Read(rtc, 0x0A) & 0x7F);
    }

    [Fact]
    public void Fixed_time_reads_exactly_in_bcd_binary_and_12_hour_modes()
    {
        _clock.Pause();
        var rtc = new CmosRtc(_timers, _irq8, new DateTime(2026, 11, 24, 14, 5, 9, DateTimeKind.Utc));
        Assert.Equal(0x09, Read(rtc, 0x00));
        Assert.Equal(0x05, Read(rtc, 0x02));
        Assert.Equal(0x14, Read(rtc, 0x04));
        Assert.Equal(0x03, Read(rtc, 0x06)); // Tuesday (Sunday = 1)
        Assert.Equal(0x24, Read(rtc, 0x07));
        Assert.Equal(0x11, Read(rtc, 0x08));
        Assert.Equal(0x26, Read(rtc, 0x09));
        Assert.Equal(0x20, Read(rtc, 0x32));

        Write(rtc, 0x0B, 0x06); // binary, 24 h
        Assert.Equal(14, Read(rtc, 0x04));
        Assert.Equal(24, Read(rtc, 0x07));
        Write(rtc, 0x0B, 0x04); // binary, 12 h
        Assert.Equal(0x80 | 2, Read(rtc, 0x04)); // 2 PM
        Write(rtc, 0x0B, 0x00); // BCD, 12 h
        Assert.Equal(0x82, Read(rtc, 0x04));
    }

    [Fact]
    public void Guest_sets_the_time_with_the_set_bit()
    {
        _clock.Pause();
        var rtc = new CmosRtc(_timers, _irq8, new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Write(rtc, 0x0B, 0x82); // SET, 24 h, BCD
        Write(rtc, 0x09, 0x99);
        Write(rtc, 0x32, 0x19);
        Write(rtc, 0x08, 0x12);
        Write(rtc, 0x07, 0x31);
        Write(rtc, 0x04, 0x23);
        Write(rtc, 0x02, 0x59);
        Write(rtc, 0x00, 0x58);
        Write(rtc, 0x0B, 0x02);
        Assert.Equal(new DateTime(1999, 12, 31, 23, 59, 58, DateTimeKind.Utc), rtc.Now);
        _clock.Resume();
        var deadline = DateTime.UtcNow + Patience;
        while (rtc.Now.Year == 1999 && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.Equal(2000, ReadBcdTime(rtc).Year);
    }

    [Fact]
    public void Uip_is_set_just_before_the_second_changes()
    {
        _clock.Pause();
        var rtc = new CmosRtc(_timers, _irq8, new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(9_999_000));
        Assert.Equal(0x80, Read(rtc, 0x0A) & 0x80);
        var rtc2 = new CmosRtc(_timers, _irq8, new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(5_000_000));
        Assert.Equal(0x00, Read(rtc2, 0x0A) & 0x80);
    }

    [Fact]
    public void Update_ended_flag_is_seen_by_polling_and_cleared_by_reading_c()
    {
        var rtc = new CmosRtc(_timers, _irq8);
        Read(rtc, 0x0C);
        var deadline = DateTime.UtcNow + Patience;
        byte c = 0;
        while ((c & 0x10) == 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(20);
            c = Read(rtc, 0x0C);
        }
        Assert.Equal(0x10, c & 0x10);
        Assert.Equal(0, c & 0x80); // no interrupt enabled
    }

    [Fact]
    public void Update_interrupt_raises_irq8_until_c_is_read()
    {
        var rtc = new CmosRtc(_timers, _irq8);
        Write(rtc, 0x0B, 0x12); // UIE, 24 h
        Assert.True(_irq8.Raised.Wait(Patience));
        Assert.True(_irq8.Level);
        byte c = Read(rtc, 0x0C);
        Assert.Equal(0x90, c & 0x90);
        Assert.False(_irq8.Level);
    }

    [Fact]
    public void Periodic_interrupt_fires_at_the_rate_in_register_a()
    {
        var rtc = new CmosRtc(_timers, _irq8);
        Write(rtc, 0x0A, 0x2F); // 2 Hz
        Write(rtc, 0x0B, 0x42); // PIE
        Assert.True(_irq8.Raised.Wait(Patience));
        Assert.Equal(0xC0, Read(rtc, 0x0C) & 0xC0);
    }

    [Fact]
    public void Alarm_interrupt_fires_when_the_time_matches()
    {
        var rtc = new CmosRtc(_timers, _irq8);
        Write(rtc, 0x01, 0xFF); // any second
        Write(rtc, 0x03, 0xFF); // any minute
        Write(rtc, 0x05, 0xFF); // any hour
        Write(rtc, 0x0B, 0x22); // AIE
        Assert.True(_irq8.Raised.Wait(Patience));
        Assert.Equal(0xA0, Read(rtc, 0x0C) & 0xA0);
    }

    [Fact]
    public void Index_port_carries_the_nmi_disable_bit_and_ram_is_128_bytes()
    {
        var rtc = new CmosRtc(_timers, _irq8);
        rtc.Write(0, [0x80 | 0x40]);
        Assert.True(rtc.NmiDisabled);
        rtc.Write(1, [0xA5]);
        Assert.Equal(0xA5, rtc.ReadRegister(0x40));
        rtc.Write(0, [0x0F]);
        Assert.False(rtc.NmiDisabled);
        Assert.Throws<ArgumentOutOfRangeException>(() => rtc.ReadRegister(128));
        Write(rtc, 0x0D, 0x00); // read-only
        Assert.Equal(0x80, Read(rtc, 0x0D));
    }

    [Fact]
    public void Memory_size_fields_follow_the_builder()
    {
        var rtc = new CmosRtc(_timers, _irq8);
        rtc.SetMemorySize(3ul << 30, 2ul << 30); // 3 GiB below 4 GiB, 2 GiB above
        Assert.Equal(0x0280, rtc.ReadRegister(0x15) | rtc.ReadRegister(0x16) << 8);
        Assert.Equal(0xFFFF, rtc.ReadRegister(0x30) | rtc.ReadRegister(0x31) << 8);
        Assert.Equal(0xFFFF, rtc.ReadRegister(0x17) | rtc.ReadRegister(0x18) << 8);
        Assert.Equal((int)(((3L << 30) - (16L << 20)) / 65536), rtc.ReadRegister(0x34) | rtc.ReadRegister(0x35) << 8);
        Assert.Equal((int)((2L << 30) / 65536), rtc.ReadRegister(0x5B) | rtc.ReadRegister(0x5C) << 8 | rtc.ReadRegister(0x5D) << 16);

        rtc.SetMemorySize(32ul << 20, 0);
        Assert.Equal(31 * 1024, rtc.ReadRegister(0x30) | rtc.ReadRegister(0x31) << 8);
        Assert.Equal(16 * 1024 * 1024 / 65536, rtc.ReadRegister(0x34) | rtc.ReadRegister(0x35) << 8);
        Assert.Throws<ArgumentOutOfRangeException>(() => rtc.SetMemorySize(5ul << 30, 0));
    }
}
