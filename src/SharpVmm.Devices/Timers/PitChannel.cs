namespace SharpVmm.Devices.Timers;

/// <summary>
/// One 8254 counter, computed from guest time rather than clocked: the count and output at any instant follow from
/// the reload value, the mode and when counting started. Not thread-safe: <see cref="Pit8254"/> holds its lock.
/// </summary>
internal sealed partial class PitChannel
{
    public const long FrequencyHz = 1_193_182;

    public int Mode;          // 0-5
    public int Access = 3;    // 1 = LSB only, 2 = MSB only, 3 = LSB then MSB
    public bool Bcd;
    public bool Gate;
    public bool NullCount;

    private int _reload;            // 1..65536 (binary) or 1..10000 (BCD)
    private bool _counting;         // counting from _startNs
    private long _startNs;
    private long _frozenTicks = -1; // modes 0/4 with the gate low: ticks counted so far
    private bool _outputBeforeStart = true;

    private bool _writeHighNext;
    private byte _pendingLow;
    private bool _readHighNext;
    private int _latchedCount = -1;
    private bool _latchedHighNext;
    private int _latchedStatus = -1;

    public PitChannel(bool gate) => Gate = gate;

    private int Modulus => Bcd ? 10_000 : 65_536;

    public static long TicksToNs(long ticks) => (long)((Int128)ticks * 1_000_000_000 / FrequencyHz);

    public static long NsToTicks(long ns) => (long)((Int128)ns * FrequencyHz / 1_000_000_000);

    /// <summary>First guest ns at or after which <paramref name="ticks"/> ticks have elapsed since the start.</summary>
    private long TickTime(long ticks) => _startNs + (long)(((Int128)ticks * 1_000_000_000 + FrequencyHz - 1) / FrequencyHz);

    private long Elapsed(long nowNs)
    {
        if (_frozenTicks >= 0) return _frozenTicks;
        return nowNs <= _startNs ? 0 : NsToTicks(nowNs - _startNs);
    }

    public void WriteControl(int mode, int access, bool bcd)
    {
        Mode = mode > 5 ? mode - 4 : mode; // modes 6 and 7 are aliases of 2 and 3
        Access = access;
        Bcd = bcd;
        NullCount = true;
        _counting = false;
        _frozenTicks = -1;
        _writeHighNext = false;
        _readHighNext = false;
        _latchedCount = -1;
        _latchedStatus = -1;
        _outputBeforeStart = Mode != 0; // mode 0's output goes low on the control word, the others go high
    }

    /// <summary>A byte written to the counter's port. Returns true when a full count was loaded.</summary>
    public bool WriteCount(byte value, long nowNs)
    {
        int count;
        switch (Access)
        {
            case 1:
                count = value;
                break;
            case 2:
                count = value << 8;
                break;
            default:
                if (!_writeHighNext)
                {
                    _pendingLow = value;
                    _writeHighNext = true;
                    if (Mode == 0)
                    {
                        // Writing the first byte stops a mode 0 count (8254 datasheet); output stays low.
                        _counting = false;
                        _outputBeforeStart = false;
                    }
                    return false;
                }
                _writeHighNext = false;
                count = _pendingLow | value << 8;
                break;
        }
        if (Bcd) count = FromBcd(count);
        _reload = count == 0 ? Modulus : count;
        NullCount = false;
        if (Mode is 1 or 5)
        {
            // Hardware-triggered modes wait for a rising gate edge.
            if (!_counting) _outputBeforeStart = true;
            return true;
        }
        Start(nowNs);
        if (!Gate) _frozenTicks = 0; // gate low: modes 0/4 hold the count, modes 2/3 wait for the gate to rise
        return true;
    }

    private void Start(long nowNs)
    {
        _startNs = nowNs;
        _counting = true;
        _frozenTicks = -1;
    }

    public void SetGate(bool gate, long nowNs)
    {
        if (gate == Gate) return;
        Gate = gate;
        if (!_counting && !(gate && Mode is 1 or 5 && !NullCount)) return;
        switch (Mode)
        {
            case 0:
            case 4:
                if (!gate) _frozenTicks = Elapsed(nowNs);
                else if (_frozenTicks >= 0)
                {
                    _startNs = nowNs - TicksToNs(_frozenTicks);
                    _frozenTicks = -1;
                }
                break;
            case 1:
            case 5:
                if (gate) Start(nowNs); // rising edge (re)triggers
                break;
            default: // 2, 3: gate low stops and forces the output high; the rising edge reloads
                if (gate) Start(nowNs);
                else _frozenTicks = Elapsed(nowNs);
                break;
        }
    }

    public bool Output(long nowNs)
    {
        if (!_counting) return _outputBeforeStart;
        long d = Elapsed(nowNs);
        int n = _reload;
        switch (Mode)
        {
            case 0:
            case 1:
                return d >= n;
            case 2:
                if (_frozenTicks >= 0) return true;
                return n == 1 || d % n != n - 1;
            case 3:
                if (_frozenTicks >= 0) return true;
                return d % n < (n + 1) / 2;
            default: // 4, 5: one low tick when the count reaches zero
                return d != n;
        }
    }

    public int Count(long nowNs)
    {
        if (!_counting) return _reload == Modulus ? 0 : _reload;
        long d = Elapsed(nowNs);
        int n = _reload;
        int m = Modulus;
        switch (Mode)
        {
            case 2:
                return n - (int)(d % n);
            case 3:
            {
                long half = (n + 1) / 2;
                int c = n - 2 * (int)(d % n % half);
                return c <= 0 ? n : c & ~1;
            }
            default:
                return (int)(((n - d) % m + m) % m);
        }
    }

    /// <summary>
    /// For the interrupt of channel 0: the next guest time after <paramref name="afterNs"/> at which the output rises,
    /// or -1 if it never does without reprogramming.
    /// </summary>
    public long NextRisingEdge(long afterNs)
    {
        if (!_counting || _frozenTicks >= 0) return -1;
        long n = _reload;
        long d = afterNs <= _startNs ? 0 : NsToTicks(afterNs - _startNs);
        switch (Mode)
        {
            case 0:
            case 1:
                return d < n ? TickTime(n) : -1;
            case 2:
            case 3:
            {
                long k = d / n + 1;
                long t = TickTime(k * n);
                return t > afterNs ? t : TickTime((k + 1) * n);
            }
            default: // 4, 5: rising edge ends the one-tick low pulse
                return d < n + 1 ? TickTime(n + 1) : -1;
        }
    }

    public bool IsOneShotRise => Mode is 0 or 1;

    public void LatchCount(long nowNs)
    {
        if (_latchedCount >= 0) return; // a second latch before the first is read is ignored
        int c = Count(nowNs);
        _latchedCount = Bcd ? ToBcd(c) : c;
        _latchedHighNext = false;
    }

    public void LatchStatus(long nowNs)
    {
        if (_latchedStatus >= 0) return;
        _latchedStatus = (Output(nowNs) ? 0x80 : 0) | (NullCount ? 0x40 : 0) | Access << 4 | Mode << 1 | (Bcd ? 1 : 0);
    }

    public byte Read(long nowNs)
    {
        if (_latchedStatus >= 0)
        {
            byte s = (byte)_latchedStatus;
            _latchedStatus = -1;
            return s;
        }
        if (_latchedCount >= 0)
        {
            int c = _latchedCount;
            switch (Access)
            {
                case 1:
                    _latchedCount = -1;
                    return (byte)c;
                case 2:
                    _latchedCount = -1;
                    return (byte)(c >> 8);
                default:
                    if (!_latchedHighNext)
                    {
                        _latchedHighNext = true;
                        return (byte)c;
                    }
                    _latchedCount = -1;
                    return (byte)(c >> 8);
            }
        }
        int count = Count(nowNs);
        if (Bcd) count = ToBcd(count);
        switch (Access)
        {
            case 1:
                return (byte)count;
            case 2:
                return (byte)(count >> 8);
            default:
                _readHighNext = !_readHighNext;
                return _readHighNext ? (byte)count : (byte)(count >> 8);
        }
    }

    private static int FromBcd(int v)
        => (v & 0xF) % 10 + ((v >> 4) & 0xF) % 10 * 10 + ((v >> 8) & 0xF) % 10 * 100 + ((v >> 12) & 0xF) % 10 * 1000;

    private static int ToBcd(int v)
    {
        v %= 10_000;
        return v % 10 | (v / 10 % 10) << 4 | (v / 100 % 10) << 8 | (v / 1000) << 12;
    }
}
