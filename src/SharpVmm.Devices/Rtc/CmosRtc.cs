using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;
using SharpVmm.Devices.Timers;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Rtc;

/// <summary>
/// MC146818-compatible CMOS RTC and 128 bytes of CMOS RAM at ports 0x70 (index; bit 7 = NMI disable) and 0x71
/// (data), register at 0x70 with 2 ports. The clock starts at host UTC time and advances with
/// <see cref="Core.Time.GuestClock"/> (so it stops while the VM is paused); the guest may set it. BCD or binary,
/// 12 or 24 hours per status register B; UIP in A; update-ended, periodic and alarm flags in C with IRQ 8
/// (<paramref name="irq8"/>) when enabled in B. Memory-size fields are set by the machine builder through
/// <see cref="SetMemorySize"/>.
/// </summary>
public sealed partial class CmosRtc : IIoDevice
{
    public const ushort BasePort = PcLayout.RtcPort;
    public const ushort PortCount = 2;
    public const int Gsi = PcLayout.RtcGsi;

    public const byte RegSeconds = 0x00, RegSecondsAlarm = 0x01, RegMinutes = 0x02, RegMinutesAlarm = 0x03;
    public const byte RegHours = 0x04, RegHoursAlarm = 0x05, RegDayOfWeek = 0x06, RegDayOfMonth = 0x07;
    public const byte RegMonth = 0x08, RegYear = 0x09, RegA = 0x0A, RegB = 0x0B, RegC = 0x0C, RegD = 0x0D;
    public const byte RegCentury = 0x32;

    private const byte BSet = 0x80, BPie = 0x40, BAie = 0x20, BUie = 0x10, BBinary = 0x04, B24Hour = 0x02;
    private const byte CIrqf = 0x80, CPf = 0x40, CAf = 0x20, CUf = 0x10;
    private const long UipWindowNs = 244_000;
    private const long TicksPerSecond = TimeSpan.TicksPerSecond;

    private readonly object _gate = new();
    private readonly TimerService _timers;
    private readonly IInterruptLine _irq8;
    private readonly GuestTimer _timer;
    private readonly byte[] _ram = new byte[128];
    private long _baseUtcTicks;   // wall time (DateTime ticks) at guest time _baseNs
    private long _baseNs;
    private long _lastUpdateSecond;   // last whole second for which UF was reported
    private long _lastPeriodicIndex;  // last periodic interval for which PF was reported
    private long _nextEventNs = -1;
    private byte _index;
    private bool _irqHigh;

    /// <param name="utcNow">The wall clock at start (host UTC by default).</param>
    public CmosRtc(TimerService timers, IInterruptLine irq8, DateTime? utcNow = null)
    {
        ArgumentNullException.ThrowIfNull(timers);
        ArgumentNullException.ThrowIfNull(irq8);
        _timers = timers;
        _irq8 = irq8;
        _timer = timers.CreateTimer(OnEvent);
        DateTime start = utcNow ?? DateTime.UtcNow;
        _baseUtcTicks = DateTime.SpecifyKind(start, DateTimeKind.Utc).Ticks;
        _baseNs = timers.Clock.NowNs;
        _ram[RegA] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
        _ram[RegB] = B24Hour;
        _ram[RegD] = 0x80; // valid RAM and time
        _lastUpdateSecond = CurrentTicks(_baseNs) / TicksPerSecond;
        SetMemorySize(0, 0);
    }

    /// <summary>Port 0x70 bit 7: the guest masked NMIs.</summary>
    public bool NmiDisabled { get; private set; }

    /// <summary>The RTC's current wall time (UTC unless the guest set it otherwise).</summary>
    public DateTime Now
    {
        get { lock (_gate) return new DateTime(CurrentTicks(_timers.Clock.NowNs), DateTimeKind.Utc); }
    }

    /// <summary>
    /// Fills the BIOS memory-size fields: 0x15/0x16 base memory (640 KiB), 0x17/0x18 and 0x30/0x31 KiB above 1 MiB
    /// (max 65535), 0x34/0x35 64-KiB blocks above 16 MiB below 4 GiB, 0x5B-0x5D 64-KiB blocks above 4 GiB.
    /// </summary>
    public void SetMemorySize(ulong ramBelow4GiB, ulong ramAbove4GiB)
    {
        const ulong MiB = 1024 * 1024;
        if (ramBelow4GiB > 4096 * MiB) throw new ArgumentOutOfRangeException(nameof(ramBelow4GiB), ramBelow4GiB, "RAM below 4 GiB cannot exceed 4 GiB.");
        ulong blocksAbove4G = ramAbove4GiB / 65536;
        if (blocksAbove4G > 0xFF_FFFF) throw new ArgumentOutOfRangeException(nameof(ramAbove4GiB), ramAbove4GiB, "CMOS can describe at most 1 TiB of RAM above 4 GiB.");
        ulong extKb = ramBelow4GiB > MiB ? Math.Min((ramBelow4GiB - MiB) / 1024, 0xFFFF) : 0;
        ulong above16M = ramBelow4GiB > 16 * MiB ? Math.Min((ramBelow4GiB - 16 * MiB) / 65536, 0xFFFF) : 0;
        lock (_gate)
        {
            _ram[0x15] = 0x80; // 640 KiB = 0x0280
            _ram[0x16] = 0x02;
            _ram[0x17] = _ram[0x30] = (byte)extKb;
            _ram[0x18] = _ram[0x31] = (byte)(extKb >> 8);
            _ram[0x34] = (byte)above16M;
            _ram[0x35] = (byte)(above16M >> 8);
            _ram[0x5B] = (byte)blocksAbove4G;
            _ram[0x5C] = (byte)(blocksAbove4G >> 8);
            _ram[0x5D] = (byte)(blocksAbove4G >> 16);
        }
    }

    /// <summary>Raw CMOS byte (time registers as the guest would read them).</summary>
    public byte ReadRegister(int index)
    {
        if ((uint)index >= 128) throw new ArgumentOutOfRangeException(nameof(index), index, "CMOS has registers 0 to 127.");
        lock (_gate) return ReadLocked((byte)index);
    }

    public void WriteRegister(int index, byte value)
    {
        if ((uint)index >= 128) throw new ArgumentOutOfRangeException(nameof(index), index, "CMOS has registers 0 to 127.");
        lock (_gate) WriteLocked((byte)index, value);
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                data[i] = port == 0 ? (byte)(_index | (NmiDisabled ? 0x80 : 0)) : port == 1 ? ReadLocked(_index) : (byte)0xFF;
            }
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                if (port == 0)
                {
                    _index = (byte)(data[i] & 0x7F);
                    NmiDisabled = (data[i] & 0x80) != 0;
                }
                else if (port == 1)
                {
                    WriteLocked(_index, data[i]);
                }
            }
        }
    }

    private long CurrentTicks(long nowNs) => _baseUtcTicks + (nowNs - _baseNs) / 100;

    private bool Binary => (_ram[RegB] & BBinary) != 0;

    private byte Encode(int value) => Binary ? (byte)value : (byte)(value / 10 << 4 | value % 10);

    private int Decode(byte value) => Binary ? value : (value >> 4) * 10 + (value & 0xF);

    private byte ReadLocked(byte index)
    {
        long now = _timers.Clock.NowNs;
        bool frozen = (_ram[RegB] & BSet) != 0;
        switch (index)
        {
            case RegA:
            {
                byte a = (byte)(_ram[RegA] & 0x7F);
                long fracNs = CurrentTicks(now) % TicksPerSecond * 100;
                if (!frozen && (a & 0x70) == 0x20 && fracNs >= 1_000_000_000 - UipWindowNs) a |= 0x80;
                return a;
            }
            case RegC:
            {
                byte c = (byte)(_ram[RegC] | PollFlagsLocked(now));
                _ram[RegC] = 0;
                if (_irqHigh)
                {
                    _irqHigh = false;
                    _irq8.Lower();
                }
                return c;
            }
            case RegSeconds or RegMinutes or RegHours or RegDayOfWeek or RegDayOfMonth or RegMonth or RegYear or RegCentury:
                if (!frozen) StoreTimeLocked(new DateTime(CurrentTicks(now), DateTimeKind.Utc));
                return _ram[index];
            default:
                return _ram[index];
        }
    }

    /// <summary>UF and PF for a guest that polls C instead of taking interrupts.</summary>
    private byte PollFlagsLocked(long now)
    {
        if ((_ram[RegB] & BSet) != 0) return 0;
        byte flags = 0;
        long second = CurrentTicks(now) / TicksPerSecond;
        if (second != _lastUpdateSecond)
        {
            _lastUpdateSecond = second;
            flags |= CUf;
        }
        long period = PeriodicNs();
        if (period > 0)
        {
            long idx = now / period;
            if (idx != _lastPeriodicIndex)
            {
                _lastPeriodicIndex = idx;
                flags |= CPf;
            }
        }
        return flags;
    }

    private void StoreTimeLocked(DateTime t)
    {
        _ram[RegSeconds] = Encode(t.Second);
        _ram[RegMinutes] = Encode(t.Minute);
        if ((_ram[RegB] & B24Hour) != 0)
        {
            _ram[RegHours] = Encode(t.Hour);
        }
        else
        {
            int h12 = t.Hour % 12 == 0 ? 12 : t.Hour % 12;
            _ram[RegHours] = (byte)(Encode(h12) | (t.Hour >= 12 ? 0x80 : 0));
        }
        _ram[RegDayOfWeek] = Encode((int)t.DayOfWeek + 1);
        _ram[RegDayOfMonth] = Encode(t.Day);
        _ram[RegMonth] = Encode(t.Month);
        _ram[RegYear] = Encode(t.Year % 100);
        _ram[RegCentury] = Encode(t.Year / 100);
    }

    private int DecodeHour(byte raw)
    {
        if ((_ram[RegB] & B24Hour) != 0) return Decode(raw);
        int h = Decode((byte)(raw & 0x7F)) % 12;
        return (raw & 0x80) != 0 ? h + 12 : h;
    }

    /// <summary>Makes the time registers the guest wrote the current time; ignores an impossible date.</summary>
    private void AdoptStoredTimeLocked(long now)
    {
        int year = Decode(_ram[RegCentury]) * 100 + Decode(_ram[RegYear]);
        int month = Decode(_ram[RegMonth]);
        int day = Decode(_ram[RegDayOfMonth]);
        int hour = DecodeHour(_ram[RegHours]);
        int minute = Decode(_ram[RegMinutes]);
        int second = Decode(_ram[RegSeconds]);
        if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)
            || hour > 23 || minute > 59 || second > 59)
            return;
        var t = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc);
        _baseUtcTicks = t.Ticks;
        _baseNs = now;
        _lastUpdateSecond = t.Ticks / TicksPerSecond;
    }

    private void WriteLocked(byte index, byte value)
    {
        long now = _timers.Clock.NowNs;
        bool frozen = (_ram[RegB] & BSet) != 0;
        switch (index)
        {
            case RegA:
                _ram[RegA] = (byte)(value & 0x7F);
                break;
            case RegB:
            {
                if (!frozen && (value & BSet) != 0) StoreTimeLocked(new DateTime(CurrentTicks(now), DateTimeKind.Utc));
                // Switching the data mode re-encodes nothing: the guest is expected to do it with SET (as the part does).
                _ram[RegB] = (value & BSet) != 0 ? (byte)(value & ~BUie) : value;
                if (frozen && (value & BSet) == 0) AdoptStoredTimeLocked(now);
                break;
            }
            case RegC:
            case RegD:
                return; // read-only
            case RegSeconds or RegMinutes or RegHours or RegDayOfWeek or RegDayOfMonth or RegMonth or RegYear or RegCentury:
                if (!frozen) StoreTimeLocked(new DateTime(CurrentTicks(now), DateTimeKind.Utc));
                _ram[index] = value;
                if (!frozen && index != RegDayOfWeek) AdoptStoredTimeLocked(now);
                break;
            default:
                _ram[index] = value;
                return;
        }
        ScheduleLocked(now);
    }

    private long PeriodicNs()
    {
        int rate = _ram[RegA] & 0x0F;
        if (rate == 0 || (_ram[RegA] & 0x70) != 0x20) return 0;
        if (rate < 3) rate += 7; // rates 1 and 2 repeat 8 and 9 with a 32.768 kHz base
        return 1_000_000_000L * (1L << (rate - 1)) / 32768;
    }

    private void ScheduleLocked(long now)
    {
        byte b = _ram[RegB];
        long next = long.MaxValue;
        if ((b & BSet) == 0 && (b & (BUie | BAie)) != 0)
        {
            long fracNs = CurrentTicks(now) % TicksPerSecond * 100;
            next = now + (1_000_000_000 - fracNs);
        }
        long period = PeriodicNs();
        if ((b & BPie) != 0 && period > 0) next = Math.Min(next, (now / period + 1) * period);
        if (next == long.MaxValue)
        {
            _nextEventNs = -1;
            _timer.Cancel();
            return;
        }
        _nextEventNs = next;
        _timer.Arm(next);
    }

    private void OnEvent(long deadlineNs)
    {
        lock (_gate)
        {
            if (deadlineNs != _nextEventNs) return;
            long now = Math.Max(deadlineNs, _timers.Clock.NowNs);
            byte b = _ram[RegB];
            byte flags = PollFlagsLocked(now);
            if ((flags & CUf) != 0 && AlarmMatchesLocked(now)) flags |= CAf;
            _ram[RegC] |= flags;
            if ((_ram[RegC] & b & (CPf | CAf | CUf)) != 0 && (_ram[RegC] & CIrqf) == 0)
            {
                _ram[RegC] |= CIrqf;
                _irqHigh = true;
                _irq8.Raise();
            }
            ScheduleLocked(now);
        }
    }

    private bool AlarmMatchesLocked(long now)
    {
        var t = new DateTime(CurrentTicks(now), DateTimeKind.Utc);
        return AlarmField(_ram[RegSecondsAlarm], t.Second, false)
            && AlarmField(_ram[RegMinutesAlarm], t.Minute, false)
            && AlarmField(_ram[RegHoursAlarm], t.Hour, true);
    }

    private bool AlarmField(byte alarm, int value, bool hour)
    {
        if ((alarm & 0xC0) == 0xC0) return true; // "don't care"
        return (hour ? DecodeHour(alarm) : Decode(alarm)) == value;
    }
}
