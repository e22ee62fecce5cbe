using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static SharpVmm.Interop.Libc;

namespace SharpVmm.Devices.Net.Slirp;

/// <summary>
/// User-mode networking through libslirp: a TCP/IP stack in our process that turns the guest's frames into ordinary
/// host sockets, so no privilege is needed. It serves DHCP and DNS on the virtual network, and connections to the
/// gateway reach the host's loopback. libslirp is not thread-safe, so one thread of ours makes every call into it
/// (including the callbacks it makes back); frames from the guest reach that thread through a bounded queue.
/// </summary>
public sealed class SlirpBackend : INetBackend
{
    private const int ScratchSize = 65536 + 256;

    private readonly SlirpOptions _options;
    private readonly ILogger _log;
    private readonly ConcurrentQueue<(byte[] Data, int Length)> _outbound = new();
    private readonly WakeupFd _wakeup;
    private readonly byte[] _scratch = new byte[ScratchSize];
    private readonly Dictionary<nint, Timer> _timers = [];
    private readonly List<Timer> _due = [];
    private readonly List<nint> _unmanaged = [];
    private GCHandle _self;
    private nint _slirp;
    private PollFd[] _fds = new PollFd[16];
    private int _fdCount;
    private nint _nextTimer = 1;
    private int _queued;
    private long _dropped;
    private NetFrameHandler? _receive;
    private Thread? _thread;
    private volatile bool _stopping;
    private int _disposed;

    private sealed class Timer(nint handler, nint opaque)
    {
        /// <summary>libslirp's <c>void (*)(void *opaque)</c>.</summary>
        public readonly nint Handler = handler;
        public readonly nint Opaque = opaque;
        public long ExpireMs = long.MaxValue;
    }

    public SlirpBackend(SlirpOptions? options = null, ILogger? logger = null)
    {
        _options = options ?? new SlirpOptions();
        _log = logger ?? NullLogger.Instance;
        _wakeup = new WakeupFd();
        _self = GCHandle.Alloc(this);
        try
        {
            nint config = Allocate(Marshal.SizeOf<SlirpNative.Config>());
            Marshal.StructureToPtr(BuildConfig(), config, false);
            nint callbacks = Allocate(Marshal.SizeOf<SlirpNative.Callbacks>());
            Marshal.StructureToPtr(Callbacks.Table, callbacks, false);
            _slirp = SlirpNative.slirp_new(config, callbacks, GCHandle.ToIntPtr(_self));
            if (_slirp == 0) throw new NetBackendException("user networking: libslirp refused its configuration (slirp_new failed)");
            _log.LogInformation("user networking: libslirp {Version}, network {Network}/{Mask}, gateway {Host}, DNS {Dns}",
                Marshal.PtrToStringUTF8(SlirpNative.slirp_version_string()), _options.Network, _options.Netmask, _options.Host, _options.Dns);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Release();
            throw new NetBackendException($"user networking needs libslirp ({SlirpNative.Library}, version 4.1 or later): install it (apt-get install libslirp0) or use --net tap", e);
        }
        catch
        {
            Release();
            throw;
        }
    }

    public string Description => $"user {_options.Network}/{_options.Netmask} gateway {_options.Host}";
    /// <summary>Guest frames dropped because the slirp thread fell behind by more than <see cref="SlirpOptions.MaxQueuedFrames"/>.</summary>
    public long DroppedFrames => Interlocked.Read(ref _dropped);

    private SlirpNative.Config BuildConfig()
    {
        var o = _options;
        foreach (var a in new[] { o.Network, o.Netmask, o.Host, o.DhcpStart, o.Dns })
            if (a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
                throw new NetBackendException($"user networking: {a} is not an IPv4 address");
        return new SlirpNative.Config
        {
            Version = SlirpNative.ConfigVersion,
            Restricted = 0,
            InEnabled = 1,
            VNetwork = SlirpNative.InAddr(o.Network),
            VNetmask = SlirpNative.InAddr(o.Netmask),
            VHost = SlirpNative.InAddr(o.Host),
            In6Enabled = o.Ipv6 ? (byte)1 : (byte)0,
            VPrefixAddr6 = SlirpNative.In6Addr.From(o.Prefix6),
            VPrefixLen = o.PrefixLength6,
            VHost6 = SlirpNative.In6Addr.From(o.Host6),
            VHostname = AllocateString("sharpvmm"),
            VDhcpStart = SlirpNative.InAddr(o.DhcpStart),
            VNameserver = SlirpNative.InAddr(o.Dns),
            VNameserver6 = SlirpNative.In6Addr.From(o.Dns6),
        };
    }

    private nint Allocate(int bytes)
    {
        nint p = Marshal.AllocHGlobal(bytes);
        _unmanaged.Add(p);
        return p;
    }

    private nint AllocateString(string s)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(s + "\0");
        nint p = Allocate(bytes.Length);
        Marshal.Copy(bytes, 0, p, bytes.Length);
        return p;
    }

    public void Start(NetFrameHandler receive)
    {
        if (_receive is not null) throw new InvalidOperationException("the user-mode backend is already started");
        _receive = receive;
        _thread = new Thread(Loop) { IsBackground = true, Name = "slirp" };
        _thread.Start();
    }

    public void Send(ReadOnlySpan<byte> frame)
    {
        if (_stopping || frame.IsEmpty) return;
        if (Interlocked.Increment(ref _queued) > _options.MaxQueuedFrames)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _dropped);
            return;
        }
        var copy = ArrayPool<byte>.Shared.Rent(frame.Length);
        frame.CopyTo(copy);
        _outbound.Enqueue((copy, frame.Length));
        _wakeup.Signal();
    }

    // The slirp thread: feed it the guest's frames, sleep in poll over its sockets, let it handle what happened.
    private void Loop()
    {
        try
        {
            while (!_stopping)
            {
                while (_outbound.TryDequeue(out var f))
                {
                    Interlocked.Decrement(ref _queued);
                    SlirpNative.slirp_input(_slirp, ref f.Data[0], f.Length);
                    ArrayPool<byte>.Shared.Return(f.Data);
                }
                uint timeout = uint.MaxValue;
                _fdCount = 0;
                AddFd(_wakeup.Fd, PollIn);
                SlirpNative.slirp_pollfds_fill(_slirp, ref timeout, Callbacks.AddPoll, GCHandle.ToIntPtr(_self));
                int wait = (int)Math.Min(timeout, 1000u);
                long next = NextTimerMs();
                if (next != long.MaxValue) wait = (int)Math.Clamp(next - NowMs(), 0, wait);
                int n = Poll(_fds.AsSpan(0, _fdCount), wait);
                bool error = n < 0 && Marshal.GetLastPInvokeError() != EINTR;
                if (n > 0 && _fds[0].Revents != 0) _wakeup.Consume();
                if (n < 0) for (int i = 0; i < _fdCount; i++) _fds[i].Revents = 0;
                SlirpNative.slirp_pollfds_poll(_slirp, error ? 1 : 0, Callbacks.GetRevents, GCHandle.ToIntPtr(_self));
                RunExpiredTimers();
            }
        }
        catch (Exception e)
        {
            _log.LogError(e, "user networking stopped: {Message}", e.Message);
        }
    }

    private int AddFd(int fd, short events)
    {
        if (_fdCount == _fds.Length) Array.Resize(ref _fds, _fds.Length * 2);
        _fds[_fdCount] = new PollFd { Fd = fd, Events = events };
        return _fdCount++;
    }

    private static long NowNs() => (long)((Int128)Stopwatch.GetTimestamp() * 1_000_000_000 / Stopwatch.Frequency);
    private static long NowMs() => NowNs() / 1_000_000;

    private long NextTimerMs()
    {
        long next = long.MaxValue;
        foreach (var t in _timers.Values) next = Math.Min(next, t.ExpireMs);
        return next;
    }

    private void RunExpiredTimers()
    {
        if (_timers.Count == 0) return;
        long now = NowMs();
        // A handler may re-arm or free timers: collect first, then fire those still armed and due.
        _due.Clear();
        foreach (var t in _timers.Values) if (t.ExpireMs <= now) _due.Add(t);
        foreach (var t in _due)
        {
            if (t.ExpireMs > now || !_timers.ContainsValue(t)) continue;
            t.ExpireMs = long.MaxValue;
            unsafe { ((delegate* unmanaged<nint, void>)t.Handler)(t.Opaque); }
        }
        _due.Clear();
    }

    // ---- what the callbacks do, on the slirp thread ----

    private void Deliver(nint buffer, int length)
    {
        if (_receive is null || length <= 0) return;
        if (length > _scratch.Length)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }
        Marshal.Copy(buffer, _scratch, 0, length);
        _receive(_scratch.AsSpan(0, length));
    }

    private nint NewTimer(nint handler, nint handlerOpaque)
    {
        nint id = _nextTimer++;
        _timers[id] = new Timer(handler, handlerOpaque);
        return id;
    }

    private static SlirpBackend From(nint opaque) => (SlirpBackend)GCHandle.FromIntPtr(opaque).Target!;

    /// <summary>The C entry points handed to libslirp; each finds its backend through the opaque pointer and never throws into C.</summary>
    // The address of an [UnmanagedCallersOnly] method is its native entry point (taken with &, not through
    // reflection, so an ahead-of-time compiled binary has the code).
    private static unsafe class Callbacks
    {
        public static readonly nint AddPoll = (nint)(delegate* unmanaged<int, int, nint, int>)&OnAddPoll;
        public static readonly nint GetRevents = (nint)(delegate* unmanaged<int, nint, int>)&OnGetRevents;

        public static readonly SlirpNative.Callbacks Table = new()
        {
            SendPacket = (nint)(delegate* unmanaged<nint, nuint, nint, nint>)&OnSendPacket,
            GuestError = (nint)(delegate* unmanaged<nint, nint, void>)&OnGuestError,
            ClockGetNs = (nint)(delegate* unmanaged<nint, long>)&OnClockGetNs,
            TimerNew = (nint)(delegate* unmanaged<nint, nint, nint, nint>)&OnTimerNew,
            TimerFree = (nint)(delegate* unmanaged<nint, nint, void>)&OnTimerFree,
            TimerMod = (nint)(delegate* unmanaged<nint, long, nint, void>)&OnTimerMod,
            RegisterPollFd = (nint)(delegate* unmanaged<int, nint, void>)&OnRegisterPollFd,
            UnregisterPollFd = (nint)(delegate* unmanaged<int, nint, void>)&OnRegisterPollFd,
            Notify = (nint)(delegate* unmanaged<nint, void>)&OnNotify,
        };

        [UnmanagedCallersOnly]
        private static nint OnSendPacket(nint buffer, nuint length, nint opaque)
        {
            try
            {
                From(opaque).Deliver(buffer, (int)Math.Min(length, int.MaxValue));
            }
            catch (Exception e)
            {
                From(opaque)._log.LogError(e, "user networking: delivering a frame failed: {Message}", e.Message);
            }
            return (nint)length;
        }

        [UnmanagedCallersOnly]
        private static void OnGuestError(nint message, nint opaque)
        {
            try { From(opaque)._log.LogWarning("user networking: guest error: {Message}", Marshal.PtrToStringUTF8(message)); }
            catch (Exception) { /* a log failure must not unwind into C */ }
        }

        [UnmanagedCallersOnly]
        private static long OnClockGetNs(nint opaque) => NowNs();

        [UnmanagedCallersOnly]
        private static nint OnTimerNew(nint handler, nint handlerOpaque, nint opaque)
        {
            try { return From(opaque).NewTimer(handler, handlerOpaque); }
            catch (Exception) { return 0; }
        }

        [UnmanagedCallersOnly]
        private static void OnTimerFree(nint timer, nint opaque)
        {
            try { From(opaque)._timers.Remove(timer); }
            catch (Exception) { /* nothing to undo */ }
        }

        [UnmanagedCallersOnly]
        private static void OnTimerMod(nint timer, long expireMs, nint opaque)
        {
            try
            {
                if (From(opaque)._timers.TryGetValue(timer, out var t)) t.ExpireMs = expireMs;
            }
            catch (Exception) { /* an unknown timer is ignored */ }
        }

        // Every fd is handed over again by slirp_pollfds_fill before each poll, so registration needs no bookkeeping.
        [UnmanagedCallersOnly]
        private static void OnRegisterPollFd(int fd, nint opaque) { }

        [UnmanagedCallersOnly]
        private static void OnNotify(nint opaque)
        {
            try { From(opaque)._wakeup.Signal(); }
            catch (Exception) { /* the loop wakes within a second anyway */ }
        }

        [UnmanagedCallersOnly]
        private static int OnAddPoll(int fd, int events, nint opaque)
        {
            try
            {
                short e = 0;
                if ((events & SlirpNative.PollIn) != 0) e |= PollIn;
                if ((events & SlirpNative.PollOut) != 0) e |= PollOut;
                if ((events & SlirpNative.PollPri) != 0) e |= PollPri;
                return From(opaque).AddFd(fd, e);
            }
            catch (Exception) { return -1; }
        }

        [UnmanagedCallersOnly]
        private static int OnGetRevents(int index, nint opaque)
        {
            try
            {
                var self = From(opaque);
                if (index < 0 || index >= self._fdCount) return 0;
                short r = self._fds[index].Revents;
                int e = 0;
                if ((r & PollIn) != 0) e |= SlirpNative.PollIn;
                if ((r & PollOut) != 0) e |= SlirpNative.PollOut;
                if ((r & PollPri) != 0) e |= SlirpNative.PollPri;
                if ((r & (PollErr | PollNval)) != 0) e |= SlirpNative.PollErr;
                if ((r & PollHup) != 0) e |= SlirpNative.PollHup;
                return e;
            }
            catch (Exception) { return 0; }
        }
    }

    private void Release()
    {
        if (_slirp != 0)
        {
            SlirpNative.slirp_cleanup(_slirp);
            _slirp = 0;
        }
        foreach (var p in _unmanaged) Marshal.FreeHGlobal(p);
        _unmanaged.Clear();
        if (_self.IsAllocated) _self.Free();
        _wakeup.Dispose();
        while (_outbound.TryDequeue(out var f)) ArrayPool<byte>.Shared.Return(f.Data);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopping = true;
        _wakeup.Signal();
        _thread?.Join();
        Release(); // the slirp thread is gone: this thread may call into libslirp now
    }
}
