using SharpVmm.Devices.Timers;

namespace SharpVmm.Devices.Interrupts;

public sealed partial class LocalApic
{
    /// <summary>The APIC timer's input clock before the divider (the "bus clock"); 1 GHz as KVM uses, so one tick is 1 ns.</summary>
    public const long TimerFrequencyHz = 1_000_000_000;

    /// <summary>Shortest period a periodic timer fires at on the host; the count the guest reads still uses the real period.</summary>
    public const long MinPeriodicIntervalNs = 100_000;

    private const uint TimerModeOneShot = 0;
    private const uint TimerModePeriodic = 1;
    private const uint TimerModeTscDeadline = 2;

    private readonly TimerService _timers;
    private readonly GuestTimer _timer;
    private uint _timerInitialCount;
    private uint _timerDivide;
    private long _timerStartNs;      // guest time the current count was loaded
    private long _timerPeriodNs;     // duration of one full count at the current divider
    private long _timerNextNs = -1;  // the expiry the host timer is armed for, -1 if none
    private bool _timerCounting;     // one-shot/periodic count in progress
    private ulong _tscDeadline;

    private uint TimerMode => (_lvt[0] >> 17) & 3;

    private int TimerDivisor
    {
        get
        {
            uint v = ((_timerDivide & 8) >> 1) | (_timerDivide & 3);
            return v == 7 ? 1 : 2 << (int)v;
        }
    }

    private long CountToNs(ulong count) => (long)((UInt128)count * (ulong)TimerDivisor * 1_000_000_000 / TimerFrequencyHz);

    private uint CurrentCountLocked()
    {
        if (!_timerCounting || TimerMode == TimerModeTscDeadline || _timerPeriodNs <= 0) return 0;
        long elapsed = _timers.Clock.NowNs - _timerStartNs;
        if (elapsed < 0) elapsed = 0;
        if (TimerMode == TimerModePeriodic) elapsed %= _timerPeriodNs;
        else if (elapsed >= _timerPeriodNs) return 0;
        ulong ticks = (ulong)((UInt128)(ulong)elapsed * TimerFrequencyHz / 1_000_000_000 / (ulong)TimerDivisor);
        return ticks >= _timerInitialCount ? 0 : _timerInitialCount - (uint)ticks;
    }

    private void WriteInitialCountLocked(uint value)
    {
        if (TimerMode == TimerModeTscDeadline) return; // ignored in TSC-deadline mode
        _timerInitialCount = value;
        StartCountLocked(_timers.Clock.NowNs);
    }

    private void StartCountLocked(long startNs)
    {
        StopTimerLocked();
        if (_timerInitialCount == 0) return;
        _timerStartNs = startNs;
        _timerPeriodNs = Math.Max(1, CountToNs(_timerInitialCount));
        _timerCounting = true;
        ArmLocked(startNs + _timerPeriodNs);
    }

    private void WriteDivideLocked(uint value)
    {
        uint remaining = CurrentCountLocked();
        bool counting = _timerCounting && remaining != 0;
        _timerDivide = value & 0xB;
        if (!counting) return;
        // Continue from the current count at the new rate.
        long now = _timers.Clock.NowNs;
        _timerPeriodNs = Math.Max(1, CountToNs(_timerInitialCount));
        _timerStartNs = now - (_timerPeriodNs - CountToNs(remaining));
        ArmLocked(now + CountToNs(remaining));
    }

    private void WriteLvtTimerLocked(uint value)
    {
        uint oldMode = TimerMode;
        _lvt[0] = value;
        uint newMode = TimerMode;
        if (newMode == 3) _lvt[0] &= ~(3u << 17); // reserved mode: treat as one-shot
        if (oldMode == newMode || (oldMode != TimerModeTscDeadline && TimerMode != TimerModeTscDeadline)) return;
        // Entering or leaving TSC-deadline mode disarms the timer (SDM 10.5.4.1).
        StopTimerLocked();
        _timerInitialCount = 0;
        _tscDeadline = 0;
    }

    private void WriteTscDeadlineLocked(ulong tsc)
    {
        if (TimerMode != TimerModeTscDeadline) return; // writes outside TSC-deadline mode are ignored
        StopTimerLocked();
        _tscDeadline = tsc;
        if (tsc == 0) return;
        ulong hz = _timers.Clock.TscHz;
        UInt128 ns = ((UInt128)tsc * 1_000_000_000 + hz - 1) / hz;
        ArmLocked(ns > long.MaxValue ? long.MaxValue : (long)ns);
    }

    private void ArmLocked(long deadlineNs)
    {
        _timerNextNs = deadlineNs;
        _timer.Arm(deadlineNs);
    }

    private void StopTimerLocked()
    {
        _timerCounting = false;
        _timerNextNs = -1;
        _timer.Cancel();
    }

    private void OnTimerExpired(long deadlineNs)
    {
        bool wake;
        lock (_gate)
        {
            if (deadlineNs != _timerNextNs) return; // re-programmed since this expiry was armed
            _timerNextNs = -1;
            switch (TimerMode)
            {
                case TimerModeTscDeadline:
                    _tscDeadline = 0;
                    break;
                case TimerModePeriodic when _timerCounting:
                {
                    long period = Math.Max(_timerPeriodNs, MinPeriodicIntervalNs);
                    long next = deadlineNs + period;
                    long now = _timers.Clock.NowNs;
                    // After a stall, skip the missed periods: the IRR bit coalesces them anyway.
                    if (next <= now) next = now + period - (now - deadlineNs) % period;
                    ArmLocked(next);
                    break;
                }
                default:
                    _timerCounting = false;
                    break;
            }
            LocalInterruptLocked(0);
            wake = UpdatePendingLocked();
        }
        if (wake) Wake?.Invoke();
    }
}
