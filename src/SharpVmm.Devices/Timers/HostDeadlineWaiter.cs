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
        private const int ClockMonotonic = 1;
        private const int CloExec = 0x80000;
        private const int NonBlock = 0x800;
        private const short PollIn = 1;

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
                int t = NativeMethods.timerfd_create(ClockMonotonic, CloExec | NonBlock);
                if (t < 0) return null;
                int e = NativeMethods.eventfd(0, CloExec | NonBlock);
                if (e < 0)
                {
                    NativeMethods.close(t);
                    return null;
                }
                return new TimerFdWaiter(t, e);
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
            {
                return null;
            }
        }

        public override void Signal()
        {
            long one = 1;
            if (Volatile.Read(ref _disposed) == 0) NativeMethods.write(_eventFd, ref one, 8);
        }

        public override void WaitUntil(long hostTimestamp)
        {
            int timeoutMs = -1;
            if (hostTimestamp != long.MaxValue)
            {
                long ns = RemainingNs(hostTimestamp);
                if (ns == 0) return;
                var spec = new ITimerSpec { ValueSec = ns / 1_000_000_000, ValueNsec = ns % 1_000_000_000 };
                if (NativeMethods.timerfd_settime(_timerFd, 0, ref spec, IntPtr.Zero) != 0)
                    timeoutMs = (int)Math.Min((ns + 999_999) / 1_000_000, int.MaxValue); // fall back to poll's timeout
            }
            _fds[0] = new PollFd { Fd = _timerFd, Events = PollIn };
            _fds[1] = new PollFd { Fd = _eventFd, Events = PollIn };
            NativeMethods.poll(_fds, 2, timeoutMs); // EINTR or a timeout only means "look again"
            long drained = 0;
            NativeMethods.read(_timerFd, ref drained, 8);
            NativeMethods.read(_eventFd, ref drained, 8);
        }

        public override void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            NativeMethods.close(_timerFd);
            NativeMethods.close(_eventFd);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ITimerSpec
    {
        public long IntervalSec;
        public long IntervalNsec;
        public long ValueSec;
        public long ValueNsec;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    private static class NativeMethods
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int timerfd_create(int clockId, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int timerfd_settime(int fd, int flags, ref ITimerSpec value, IntPtr oldValue);

        [DllImport("libc", SetLastError = true)]
        public static extern int eventfd(uint initialValue, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int poll([In, Out] PollFd[] fds, ulong count, int timeoutMs);

        [DllImport("libc", SetLastError = true)]
        public static extern nint read(int fd, ref long buffer, nuint count);

        [DllImport("libc", SetLastError = true)]
        public static extern nint write(int fd, ref long buffer, nuint count);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
