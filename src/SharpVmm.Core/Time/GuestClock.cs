using System.Diagnostics;

namespace SharpVmm.Core.Time;

/// <summary>
/// The VM's notion of time, shared by the emulated TSC and every emulated timer so that they agree.
/// Driven by the host's monotonic clock (never by counting instructions), so a starved vCPU still
/// sees time pass at the right rate; stops while the VM is paused.
/// </summary>
public sealed class GuestClock
{
    /// <summary>The TSC frequency the guest is told (kvm-clock / CPUID 0x15) and that RDTSC counts at.</summary>
    public const ulong DefaultTscHz = 2_000_000_000;

    private readonly object _gate = new();
    private long _pausedAtTicks = -1;
    private long _offsetTicks; // host Stopwatch ticks subtracted while paused

    public GuestClock(ulong tscHz = DefaultTscHz)
    {
        TscHz = tscHz;
        _offsetTicks = Stopwatch.GetTimestamp();
    }

    public ulong TscHz { get; }

    /// <summary>Nanoseconds of guest time since the clock was created.</summary>
    public long NowNs
    {
        get
        {
            long t = Volatile.Read(ref _pausedAtTicks);
            long ticks = (t >= 0 ? t : Stopwatch.GetTimestamp()) - Volatile.Read(ref _offsetTicks);
            return (long)((Int128)ticks * 1_000_000_000 / Stopwatch.Frequency);
        }
    }

    public ulong ReadTsc() => (ulong)((UInt128)(ulong)NowNs * TscHz / 1_000_000_000);

    /// <summary>Converts a guest time in ns to the host Stopwatch timestamp at which it occurs (for timer waits).</summary>
    public long HostTimestampFor(long guestNs)
        => Volatile.Read(ref _offsetTicks) + (long)((Int128)guestNs * Stopwatch.Frequency / 1_000_000_000);

    public void Pause()
    {
        lock (_gate) if (_pausedAtTicks < 0) Volatile.Write(ref _pausedAtTicks, Stopwatch.GetTimestamp());
    }

    public void Resume()
    {
        lock (_gate)
        {
            if (_pausedAtTicks < 0) return;
            _offsetTicks += Stopwatch.GetTimestamp() - _pausedAtTicks;
            Volatile.Write(ref _pausedAtTicks, -1);
        }
    }

    public bool IsPaused => Volatile.Read(ref _pausedAtTicks) >= 0;

    /// <summary>
    /// Sets the clock so that it reads <paramref name="guestNs"/> now, paused or running as it is: a restored
    /// snapshot's TSC and timers carry on from where the saved guest stopped, with neither a jump nor a gap.
    /// </summary>
    public void Restore(long guestNs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(guestNs);
        long ticks = (long)((Int128)guestNs * Stopwatch.Frequency / 1_000_000_000);
        lock (_gate)
        {
            long reference = _pausedAtTicks >= 0 ? _pausedAtTicks : Stopwatch.GetTimestamp();
            Volatile.Write(ref _offsetTicks, reference - ticks);
        }
    }
}
