using System.Diagnostics;
using SharpVmm.Core.Time;

namespace SharpVmm.Devices.Timers;

/// <summary>
/// The VM's single timer thread: it sleeps until the earliest armed <see cref="GuestTimer"/> deadline (converted to
/// host time through <see cref="GuestClock"/>), runs the callbacks that are due, and sleeps again. Arming a timer
/// wakes it to re-evaluate. No polling while the VM runs; while the clock is paused it re-checks every
/// <see cref="PausedRecheckMs"/> ms, and <see cref="Kick"/> after <see cref="GuestClock.Resume"/> makes it re-evaluate at once.
/// On Linux the sleep is a timerfd (nanosecond deadline); elsewhere a millisecond wait. Callbacks never run early.
/// </summary>
public sealed class TimerService : IDisposable
{
    public const int PausedRecheckMs = 20;
    private const long MaxSleepNs = 3_600_000_000_000;

    private readonly object _gate = new();
    private readonly List<GuestTimer> _timers = [];
    private readonly Thread _thread;
    private readonly HostDeadlineWaiter _waiter = HostDeadlineWaiter.Create();
    private GuestTimer[] _due = new GuestTimer[8];
    private long[] _dueDeadlines = new long[8];
    private bool _stopping;
    private long _sleepingUntilNs = long.MinValue; // guest deadline the thread sleeps for; MinValue while it scans

    public TimerService(GuestClock clock)
    {
        ArgumentNullException.ThrowIfNull(clock);
        Clock = clock;
        _thread = new Thread(Loop) { IsBackground = true, Name = "sharpvmm-timers" };
        _thread.Start();
    }

    public GuestClock Clock { get; }

    /// <summary>Raised (on the timer thread) when a callback throws; the service keeps running.</summary>
    public event Action<Exception>? CallbackFailed;

    /// <summary>Creates a disarmed timer whose callback runs on the timer thread with the deadline it fired for.</summary>
    public GuestTimer CreateTimer(Action<long> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return new GuestTimer(this, callback);
    }

    /// <summary>Makes the thread re-read the clock now (call after resuming a paused <see cref="GuestClock"/>).</summary>
    public void Kick()
    {
        _waiter.Signal();
    }

    internal void Arm(GuestTimer timer, long deadlineNs)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (timer.Slot < 0)
            {
                timer.Slot = _timers.Count;
                _timers.Add(timer);
            }
            timer.DeadlineNs = deadlineNs;
            timer.Armed = true;
            // The thread only needs waking if it sleeps past this deadline; while it scans it sees the change anyway.
            if (deadlineNs >= _sleepingUntilNs) return;
        }
        _waiter.Signal();
    }

    internal void Cancel(GuestTimer timer)
    {
        lock (_gate) timer.Armed = false;
    }

    internal bool IsArmed(GuestTimer timer)
    {
        lock (_gate) return timer.Armed;
    }

    private void Loop()
    {
        while (true)
        {
            int dueCount = 0;
            long waitUntil = long.MaxValue;
            lock (_gate)
            {
                if (_stopping) return;
                long now = Clock.NowNs;
                long earliest = long.MaxValue;
                foreach (GuestTimer t in _timers)
                {
                    if (!t.Armed) continue;
                    if (t.DeadlineNs <= now)
                    {
                        t.Armed = false;
                        if (dueCount == _due.Length)
                        {
                            Array.Resize(ref _due, dueCount * 2);
                            Array.Resize(ref _dueDeadlines, dueCount * 2);
                        }
                        _due[dueCount] = t;
                        _dueDeadlines[dueCount++] = t.DeadlineNs;
                    }
                    else if (t.DeadlineNs < earliest)
                    {
                        earliest = t.DeadlineNs;
                    }
                }
                _sleepingUntilNs = dueCount == 0 ? earliest : long.MinValue;
                if (dueCount == 0 && earliest != long.MaxValue)
                {
                    if (Clock.IsPaused)
                        waitUntil = Stopwatch.GetTimestamp() + Stopwatch.Frequency * PausedRecheckMs / 1000;
                    else if (earliest - now > MaxSleepNs)
                        waitUntil = Stopwatch.GetTimestamp() + Stopwatch.Frequency * (MaxSleepNs / 1_000_000_000); // far-off (guest-chosen) deadline: re-check hourly, never overflow
                    else
                        waitUntil = Clock.HostTimestampFor(earliest);
                }
            }

            if (dueCount == 0)
            {
                // Outside the lock: Arm signals the waiter, and a signal sent before this call is kept.
                _waiter.WaitUntil(waitUntil);
                lock (_gate) _sleepingUntilNs = long.MinValue;
                continue;
            }

            SortDue(dueCount);
            for (int i = 0; i < dueCount; i++)
            {
                GuestTimer t = _due[i];
                _due[i] = null!;
                try
                {
                    t.Callback(_dueDeadlines[i]);
                }
                catch (Exception ex)
                {
                    CallbackFailed?.Invoke(ex);
                }
            }
        }
    }

    // Due timers fire in deadline order, so a guest sees expiries in the order it programmed them.
    private void SortDue(int count)
    {
        for (int i = 1; i < count; i++)
        {
            GuestTimer t = _due[i];
            long d = _dueDeadlines[i];
            int j = i - 1;
            while (j >= 0 && _dueDeadlines[j] > d)
            {
                _due[j + 1] = _due[j];
                _dueDeadlines[j + 1] = _dueDeadlines[j];
                j--;
            }
            _due[j + 1] = t;
            _dueDeadlines[j + 1] = d;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
        }
        _waiter.Signal();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
            _waiter.Dispose();
        }
    }
}
