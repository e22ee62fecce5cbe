using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SharpVmm.Devices.Timers;

/// <summary>
/// Sleeps the timer thread until a host Stopwatch timestamp or until signalled. A signal that arrives before the
/// wait starts is not lost. On Linux a timerfd with nanosecond resolution; elsewhere an event with millisecond waits.
/// </summary>
internal abstract class HostDeadlineWaiter : IDisposable
{
    public static HostDeadlineWaiter Create() => OperatingSystem.IsLinux() && TimerFdWaiter.TryCreate() is { } fd ? fd : new EventWaiter();

    public abstract void Signal();

    /// <summary>Returns at <paramref name="hostTimestamp"/> (Stopwatch ticks; long.MaxValue = never), on a signal, or spuriously.</summary>
    public abstract void WaitUntil(long hostTimestamp);

    public abstract void Dispose();

    protected static long RemainingNs(long hostTimestamp)
    {
        long remaining = hostTimestamp - Stopwatch.GetTimestamp();
        return remaining <= 0 ? 0 : (long)((Int128)remaining * 1_000_000_000 / Stopwatch.Frequency);
    }

    private sealed class EventWaiter : HostDeadlineWaiter
    {
        private readonly AutoResetEvent _event = new(false);

        public override void Signal() => _event.Set();

        public override void WaitUntil(long hostTimestamp)
        {
            if (hostTimestamp == long.MaxValue)
            {
                _event.WaitOne();
                return;
            }
            long ns = RemainingNs(hostTimestamp);
            if (ns == 0) return;
            _event.WaitOne((int)Math.Min((ns + 999_999) / 1_000_000, int.MaxValue));
        }

        public override void Dispose() => _event.Dispose();
    }

    private sealed class TimerFdWaiter : HostDeadlineWaiter
    {
        private readonly int _timerFd;
        private readonly int _eventFd;
        private readonly PollFd[] _fds = new PollFd[2];
        private int _disposed;

        private TimerFdWaiter(int timerFd, int eventFd)
        {
            _timerFd = timerFd;
            _eventFd = eventFd;
        }

        public static TimerFdWaiter? TryCreate()
        {
            try
            {
                int t = Libc.TimerFdCreate(Libc.ClockMonotonic, Libc.TfdCloexec | Libc.TfdNonBlock);
                if (t < 0) return null;
                int e = Libc.EventFd(0, Libc.EfdCloexec | Libc.EfdNonBlock);
                if (e < 0)
                {
                    Libc.Close(t);
                    return null;
                }
                return new TimerFdWaiter(t, e);
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
            {
                return null;
            }
        }

        public override unsafe void Signal()
        {
            long one = 1;
            if (Volatile.Read(ref _disposed) == 0) Libc.Write(_eventFd, (byte*)&one, 8);
        }

        public override unsafe void WaitUntil(long hostTimestamp)
        {
            int timeoutMs = -1;
            if (hostTimestamp != long.MaxValue)
            {
                long ns = RemainingNs(hostTimestamp);
                if (ns == 0) return;
                var spec = new ITimerSpec { ValueSec = ns / 1_000_000_000, ValueNsec = ns % 1_000_000_000 };
                if (Libc.TimerFdSetTime(_timerFd, 0, &spec, null) != 0)
                    timeoutMs = (int)Math.Min((ns + 999_999) / 1_000_000, int.MaxValue); // fall back to poll's timeout
            }
            _fds[0] = new PollFd { Fd = _timerFd, Events = Libc.PollIn };
            _fds[1] = new PollFd { Fd = _eventFd, Events = Libc.PollIn };
            Libc.Poll(_fds, timeoutMs); // EINTR or a timeout only means "look again"
            long drained = 0;
            Libc.Read(_timerFd, (byte*)&drained, 8);
            Libc.Read(_eventFd, (byte*)&drained, 8);
        }

        public override void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            Libc.Close(_timerFd);
            Libc.Close(_eventFd);
        }
    }
}
