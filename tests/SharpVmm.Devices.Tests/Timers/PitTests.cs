using SharpVmm.Core.Time;
using SharpVmm.Devices.Timers;

namespace SharpVmm.Devices.Tests.Timers;

public sealed class PitTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly GuestClock _clock = new();
    private readonly TimerService _timers;
    private readonly RecordingLine _irq0 = new();
    private readonly Pit8254 _pit;
    private readonly SystemControlPort _port61;

    public PitTests()
    {
        _timers = new TimerService(_clock);
        _pit = new Pit8254(_timers, _irq0);
        _port61 = new SystemControlPort(_pit);
    }

    public void Dispose() => _timers.Dispose();

    private void Out(int port, byte value)
    {
        if (port == 0x61) _port61.Write(0, [value]);
        else _pit.Write((ulong)(port - 0x40), [value]);
    }

    private byte In(int port)
    {
        Span<byte> b = [0];
        if (port == 0x61) _port61.Read(0, b);
        else _pit.Read((ulong)(port - 0x40), b);
        return b[0];
    }

    private int ReadCount(int channel) => In(0x40 + channel) | In(0x40 + channel) << 8;

    /// <summary>Latch, then read: both bytes from one instant.</summary>
    private int ReadLatched(int channel)
    {
        Out(0x43, (byte)(channel << 6));
        return ReadCount(channel);
    }

    private static long Ticks(long ns) => Pit8254.FrequencyHz * ns / 1_000_000_000;

    /// <summary>
    /// A 16-bit down-counter went from <paramref name="from"/> to <paramref name="to"/> while between
    /// <paramref name="minNs"/> and <paramref name="maxNs"/> of guest time passed: some number of whole wraps plus the
    /// difference must land in that window (±1 tick for the rounding at each end). Holds however long the host stalls.
    /// </summary>
    private static void AssertCountedDown(int from, int to, long minNs, long maxNs)
    {
        long lo = Ticks(minNs) - 1, hi = Ticks(maxNs) + 1;
        long consumed = ((from - to) % 65536 + 65536) % 65536;
        while (consumed < lo) consumed += 65536;
        Assert.True(consumed <= hi, $"counter went {from} -> {to}, but {Ticks(minNs)}..{Ticks(maxNs)} ticks passed");
    }

    [Fact]
    public void Channel2_counts_down_with_the_gate_from_port_61_like_linux_tsc_calibration()
    {
        // quick_pit_calibrate: gate on, speaker off, mode 0, count 0xFFFF, then watch the MSB fall.
        Out(0x61, (byte)((In(0x61) & ~0x02) | 0x01));
        Out(0x43, 0xB0);
        Out(0x42, 0xFF);
        Out(0x42, 0xFF);
        long a0 = _clock.NowNs;
        int first = ReadLatched(2);
        long a1 = _clock.NowNs;
        Thread.Sleep(15);
        long b0 = _clock.NowNs;
        int second = ReadLatched(2);
        long b1 = _clock.NowNs;
        Assert.NotEqual(first, second);
        AssertCountedDown(first, second, b0 - a1, b1 - a0);
        Assert.Equal(1, In(0x61) & 1);
    }

    [Fact]
    public void Channel2_output_rises_at_terminal_count_in_mode_0()
    {
        Out(0x61, 0x01);
        _clock.Pause();
        Out(0x43, 0xB0);
        Out(0x42, 0x9B); // 0x049B ticks ≈ 1 ms
        Out(0x42, 0x04);
        Assert.Equal(0, In(0x61) & 0x20); // time stands still: still counting
        _clock.Resume();
        var deadline = DateTime.UtcNow + Patience;
        while ((In(0x61) & 0x20) == 0 && DateTime.UtcNow < deadline) Thread.Sleep(1);
        Assert.Equal(0x20, In(0x61) & 0x20);
    }

    [Fact]
    public void Gate_low_holds_the_mode_0_count()
    {
        Out(0x61, 0x00);
        Out(0x43, 0xB0);
        Out(0x42, 0x00);
        Out(0x42, 0x80);
        int a = ReadCount(2);
        Thread.Sleep(10);
        Assert.Equal(a, ReadCount(2));
        Assert.Equal(0x8000, a);
        long t0 = _clock.NowNs;
        Out(0x61, 0x01);
        long t1 = _clock.NowNs;
        Thread.Sleep(10);
        long t2 = _clock.NowNs;
        int b = ReadLatched(2);
        long t3 = _clock.NowNs;
        AssertCountedDown(a, b, t2 - t1, t3 - t0);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void Tsc_measured_against_channel2_agrees_with_the_guest_tsc_frequency()
    {
        // What the kernel's PIT calibration computes: TSC cycles per PIT tick over a stretch of counting.
        Out(0x61, 0x01);
        Out(0x43, 0xB0);
        Out(0x42, 0xFF);
        Out(0x42, 0xFF);
        ulong tscA0 = _clock.ReadTsc();
        int countA = ReadLatched(2);
        ulong tscA1 = _clock.ReadTsc();
        Thread.Sleep(30);
        ulong tscB0 = _clock.ReadTsc();
        int countB = ReadLatched(2);
        ulong tscB1 = _clock.ReadTsc();
        long pitTicks = ((countA - countB) % 65536 + 65536) % 65536;
        if (tscB1 - tscA0 > _clock.TscHz * 50 / 1000) return; // the host stalled past a counter wrap: nothing to judge
        // The true ratio lies between the shortest and longest TSC spans that could hold these PIT ticks (±1 tick).
        double lo = (double)(tscB0 - tscA1) / (pitTicks + 1) * Pit8254.FrequencyHz;
        double hi = (double)(tscB1 - tscA0) / Math.Max(1, pitTicks - 1) * Pit8254.FrequencyHz;
        Assert.InRange((double)_clock.TscHz, lo, hi);
        Assert.True(pitTicks > 1000, $"only {pitTicks} PIT ticks in 30 ms");
    }

    private bool WaitForOutput(bool high)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (((In(0x61) & 0x20) != 0) == high) return true;
            Thread.Yield();
        }
        return false;
    }

    [Fact]
    public void Mode_1_waits_for_the_gate_then_holds_the_output_low_for_the_count()
    {
        Out(0x61, 0x00);
        Out(0x43, 0xB2); // channel 2, lo/hi, mode 1
        Out(0x42, 0x9B);
        Out(0x42, 0x04); // 0x049B = 1179 ticks
        Assert.Equal(0x20, In(0x61) & 0x20); // high until triggered
        _clock.Pause();
        Out(0x61, 0x01); // rising gate edge triggers
        Assert.Equal(0, In(0x61) & 0x20);
        Assert.Equal(0x049B, ReadLatched(2));
        _clock.Resume();
        Assert.True(WaitForOutput(high: true));
    }

    [Fact]
    public void Mode_3_square_wave_toggles_and_counts_by_two()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB6); // channel 2, lo/hi, mode 3
        Out(0x42, 0x52);
        Out(0x42, 0x09); // 2386 ticks: 2 ms period
        Assert.True(WaitForOutput(high: false));
        Assert.True(WaitForOutput(high: true));
        int count = ReadLatched(2);
        Assert.Equal(0, count & 1);
        Assert.InRange(count, 2, 2386);
    }

    [Fact]
    public void Mode_4_counts_from_the_load_and_mode_5_from_the_gate_edge()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB8); // channel 2, lo/hi, mode 4
        long t0 = _clock.NowNs;
        Out(0x42, 0x00);
        Out(0x42, 0xF0);
        long t1 = _clock.NowNs;
        Assert.Equal(0x20, In(0x61) & 0x20); // high except for one tick at zero
        Thread.Sleep(5);
        long t2 = _clock.NowNs;
        int c = ReadLatched(2);
        long t3 = _clock.NowNs;
        AssertCountedDown(0xF000, c, t2 - t1, t3 - t0);

        Out(0x61, 0x00);
        Out(0x43, 0xBA); // channel 2, lo/hi, mode 5
        Out(0x42, 0x00);
        Out(0x42, 0xF0);
        Thread.Sleep(5);
        Assert.Equal(0xF000, ReadLatched(2)); // not triggered: not counting
        long g0 = _clock.NowNs;
        Out(0x61, 0x01);
        long g1 = _clock.NowNs;
        Thread.Sleep(5);
        long g2 = _clock.NowNs;
        c = ReadLatched(2);
        long g3 = _clock.NowNs;
        AssertCountedDown(0xF000, c, g2 - g1, g3 - g0);
        Assert.NotEqual(0xF000, c);
    }

    [Fact]
    public void Refresh_bit_toggles_and_low_bits_are_stored()
    {
        Out(0x61, 0x0E);
        Assert.Equal(0x0E, In(0x61) & 0x0F);
        byte seen = 0;
        var deadline = DateTime.UtcNow + Patience;
        while (seen != 0x30 && DateTime.UtcNow < deadline) seen |= (byte)(0x10 << ((In(0x61) >> 4) & 1));
        Assert.Equal(0x30, seen); // saw both 0 and 1
    }

    [Fact]
    public void Latch_command_freezes_the_value_read()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB4); // channel 2, lo/hi, mode 2
        Out(0x42, 0xFF);
        Out(0x42, 0xFF);
        Thread.Sleep(5);
        _clock.Pause();
        int live = ReadCount(2);
        Out(0x43, 0x80); // latch channel 2
        _clock.Resume();
        Thread.Sleep(20);
        Assert.Equal(live, ReadCount(2));
        Assert.InRange(live, 1, 0xFFFF);
    }

    [Fact]
    public void Read_back_returns_status_then_count()
    {
        _clock.Pause();
        Out(0x43, 0x34); // channel 0, lo/hi, mode 2, binary
        Out(0x40, 0x34);
        Out(0x40, 0x12);
        Out(0x43, 0xC2); // read-back count and status of channel 0
        byte status = In(0x40);
        Assert.Equal(0x80 | 0x30 | 2 << 1, status); // output high, lo/hi, mode 2, count loaded
        Assert.Equal(0x1234, ReadCount(0));
    }

    [Fact]
    public void Lsb_only_and_bcd_access()
    {
        _clock.Pause();
        Out(0x43, 0x91); // channel 2, LSB only, mode 0, BCD
        Out(0x42, 0x99);
        Assert.Equal(0x99, In(0x42));
        Assert.Equal(0x99, In(0x42));
        Out(0x43, 0xA0); // channel 2, MSB only, mode 0, binary
        Out(0x42, 0x12);
        Assert.Equal(0x12, In(0x42));
    }

    [Fact]
    public void Channel0_rate_generator_raises_irq0_repeatedly()
    {
        Out(0x43, 0x34);
        Out(0x40, 0x9B); // 0x049B ticks: about 1 kHz
        Out(0x40, 0x04);
        var deadline = DateTime.UtcNow + Patience;
        while (_irq0.Rises < 4 && DateTime.UtcNow < deadline) Thread.Sleep(2);
        Assert.True(_irq0.Rises >= 4);
        Out(0x43, 0x30); // mode 0 without a count: output low, no further ticks
        Assert.False(_irq0.Level);
        int rises = _irq0.Rises;
        Thread.Sleep(20);
        Assert.Equal(rises, _irq0.Rises);
    }

    [Fact]
    public void Channel0_mode_0_raises_irq0_once_at_terminal_count()
    {
        Out(0x43, 0x30);
        Out(0x40, 0x9B);
        Out(0x40, 0x04);
        Assert.True(_irq0.Raised.Wait(Patience));
        Assert.True(_irq0.Level);
        Assert.True(_pit.Channel0Output);
        Thread.Sleep(20);
        Assert.Equal(1, _irq0.Rises);
        Out(0x40, 0xFF); // writing the first byte of a new count drops the output
        Assert.False(_irq0.Level);
    }

    [Fact]
    public void Control_port_is_write_only()
    {
        Assert.Equal(0xFF, In(0x43));
    }
}
