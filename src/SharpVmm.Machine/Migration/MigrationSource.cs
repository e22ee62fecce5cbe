using System.Diagnostics;
using System.Net.Sockets;
using System.Numerics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Memory;
using static SharpVmm.Machine.Migration.MigrationProtocol;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// The outgoing side of a live migration, run on its own thread: pre-copy (all RAM, then rounds of the pages the
/// guest dirtied meanwhile, until the rest fits the downtime limit at the measured bandwidth), then stop-and-copy
/// (pause, last pages, disks handed over, machine state), then the target's ack. On success the VM stays paused for
/// good (QEMU's postmigrate); on any failure, cancel or dropped connection the disks are taken back and the guest
/// resumes as if nothing happened, since its RAM was only ever read.
/// </summary>
public sealed class MigrationSource
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(120);

    private readonly VirtualMachine _vm;
    private readonly MigrationParameters _parameters;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _cancel = new();
    private readonly Stopwatch _since = new();
    private readonly object _gate = new();
    private readonly byte[] _run = new byte[MaxRunPages * PageSize];
    private Task? _task;

    private MigrationStatus _status = MigrationStatus.None;
    private long _transferred, _remaining, _duplicate, _normal, _dirtyRate, _setupMs, _expectedDowntimeMs, _totalMs = -1;
    private long? _downtimeMs;
    private double _mbps, _bandwidth, _lastRoundSeconds;
    private long _lastRoundBytes;
    private int _rounds;
    private string? _error, _note;
    private MigrationStreamWriter? _writer;
    private MigrationChannel? _channel;
    private readonly ManualResetEventSlim _continue = new();

    public MigrationSource(VirtualMachine vm, MigrationParameters parameters, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        parameters.Validate();
        _vm = vm;
        _parameters = parameters;
        _log = logger ?? NullLogger.Instance;
        Quiesce = PauseAround;
    }

    /// <summary>
    /// Runs an action with every vCPU parked (see <see cref="DirtyTracker.Start"/>). The default pauses and resumes the
    /// VM; a monitor passes one that does so without STOP/RESUME events.
    /// </summary>
    public Action<Action> Quiesce { get; init; }

    /// <summary>
    /// QEMU's pause-before-switchover: once the guest is paused for the last copy, wait in status pre-switchover
    /// until <see cref="Continue"/> (the manager checks the target is still fine before the point of no return).
    /// </summary>
    public bool PauseBeforeSwitchover { get; init; }

    /// <summary>Raised at the start of every pass over RAM with its number, from 1 (QMP's MIGRATION_PASS).</summary>
    public event Action<int>? PassStarted;

    /// <summary>Raised on the migration thread at every status change (QMP's MIGRATION event).</summary>
    public event Action<MigrationStatus>? StatusChanged;

    public MigrationStatus Status { get { lock (_gate) return _status; } }

    /// <summary>Completes when the migration has ended (completed, failed or cancelled); never faults.</summary>
    public Task Completion => _task ?? Task.CompletedTask;

    public MigrationStats Stats
    {
        get
        {
            lock (_gate)
            {
                return new MigrationStats
                {
                    Status = _status,
                    Transferred = _writer?.BytesWritten ?? _transferred,
                    Remaining = _remaining,
                    Total = (long)_vm.Memory.TotalSize,
                    Duplicate = _duplicate,
                    Normal = _normal,
                    DirtyPagesRate = _dirtyRate,
                    Mbps = _mbps,
                    Rounds = _rounds,
                    TotalTimeMs = _totalMs >= 0 ? _totalMs : _since.ElapsedMilliseconds,
                    SetupTimeMs = _setupMs,
                    DowntimeMs = _downtimeMs,
                    ExpectedDowntimeMs = _expectedDowntimeMs,
                    Error = _error,
                    Note = _note,
                };
            }
        }
    }

    /// <summary>
    /// Begins migrating to <paramref name="uri"/> in the background; the VM must be running or paused. For an
    /// <c>fd:</c> URI the caller opens <paramref name="channel"/> (this migration then owns it).
    /// </summary>
    public void Start(MigrationUri uri, MigrationChannel? channel = null)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (uri.IsFd && channel is null) throw new ArgumentException("an fd: migration needs its channel", nameof(channel));
        lock (_gate)
        {
            if (_task is not null) throw new InvalidOperationException("this migration was already started");
            var state = _vm.State;
            if (state is not (VmState.Running or VmState.Paused))
            {
                channel?.Dispose();
                throw new MigrationException($"cannot migrate a VM that is {state.ToString().ToLowerInvariant()}: only a running or paused VM can be migrated");
            }
            _since.Start();
            _channel = channel;
            _task = new Task(() => Run(uri), CancellationToken.None, TaskCreationOptions.LongRunning);
        }
        // Reported before migrate returns, so query-migrate right after it already says "setup".
        SetStatus(MigrationStatus.Setup);
        _task.Start(TaskScheduler.Default);
    }

    /// <summary>QEMU's migrate-continue: leaves <paramref name="state"/> (only pre-switchover pauses) for the last copy.</summary>
    public void Continue(MigrationStatus state)
    {
        lock (_gate)
        {
            if (_status != state) throw new MigrationException($"Migration not in expected state: {_status.Name()}");
        }
        _continue.Set();
    }

    /// <summary>Stops an unfinished migration; the guest goes on running on this side (status cancelled).</summary>
    public void Cancel()
    {
        lock (_gate)
        {
            if (_status.IsFinished() || _status == MigrationStatus.Cancelling || _cancel.IsCancellationRequested) return;
        }
        SetStatus(MigrationStatus.Cancelling);
        _cancel.Cancel();
    }

    private void Run(MigrationUri uri)
    {
        DirtyTracker? tracker = null;
        var inactivated = new List<MigratableImage>();
        bool pausedHere = false;
        try
        {
            MigrationChannel? channel;
            lock (_gate) channel = _channel;
            channel ??= MigrationChannel.ForSocket(Connect(uri), uri.ToString());
            lock (_gate) _channel = channel;
            using var onCancel = _cancel.Token.Register(() => channel.Dispose());
            var net = channel.Stream;
            var writer = new MigrationStreamWriter(net);
            lock (_gate) _writer = writer;
            writer.WriteHeader(MigrationHeader.Describe(_vm));

            StateCodeWarmup.Run();
            tracker = new DirtyTracker(_vm);
            tracker.Start(Quiesce);
            if (!tracker.Reliable)
            {
                lock (_gate) _note = $"{tracker.Note}; all RAM is copied while the guest is paused";
                _log.LogWarning("migration: {Note}", _note);
            }
            lock (_gate) _setupMs = _since.ElapsedMilliseconds;
            SetStatus(MigrationStatus.Active);

            var pending = tracker.NewBitmaps();
            if (tracker.Reliable)
            {
                long harvestedAt = Stopwatch.GetTimestamp();
                SendRound(writer, channel, tracker.AllPages(), throttle: true);
                AwaitRound(writer, channel);
                while (true)
                {
                    ThrowIfCancelled();
                    long dirty = tracker.Harvest(pending);
                    double seconds = Stopwatch.GetElapsedTime(harvestedAt).TotalSeconds;
                    harvestedAt = Stopwatch.GetTimestamp();
                    long expected = Expected(dirty);
                    lock (_gate)
                    {
                        _remaining = dirty * PageSize;
                        _dirtyRate = seconds > 0 ? (long)(dirty / seconds) : 0;
                        _expectedDowntimeMs = expected;
                    }
                    if (expected <= _parameters.DowntimeLimitMs) break;
                    if (_rounds >= _parameters.MaxRounds)
                    {
                        _log.LogWarning("migration: {Rounds} rounds did not converge ({Dirty} pages dirty, about {Ms} ms to copy); copying the rest with the guest paused",
                            _rounds, dirty, expected);
                        break;
                    }
                    SendRound(writer, channel, pending, throttle: true);
                    AwaitRound(writer, channel);
                }
            }
            else
            {
                lock (_gate) _remaining = (long)_vm.Memory.TotalSize;
            }

            // Stop and copy.
            ThrowIfCancelled();
            if (_vm.State == VmState.Running)
            {
                try
                {
                    _vm.Pause();
                    pausedHere = true;
                }
                catch (InvalidVmTransitionException) { }
            }
            if (_vm.State != VmState.Paused)
                throw new MigrationException("the guest stopped during the migration (it powered off or failed); there is nothing left to migrate");
            long downtimeStart = Stopwatch.GetTimestamp();
            if (PauseBeforeSwitchover)
            {
                SetStatus(MigrationStatus.PreSwitchover);
                WaitHandle.WaitAny([_continue.WaitHandle, _cancel.Token.WaitHandle]);
                ThrowIfCancelled();
            }
            SetStatus(MigrationStatus.Device);
            if (tracker.Reliable)
            {
                var last = tracker.NewBitmaps();
                tracker.Harvest(last);
                for (int r = 0; r < last.Length; r++)
                    for (int w = 0; w < last[r].Length; w++) pending[r][w] |= last[r][w];
            }
            else pending = tracker.AllPages();
            SendRound(writer, channel, pending, throttle: false);
            lock (_gate) _remaining = 0;

            foreach (var (_, image) in _vm.Devices.OfType<MigratableImage>())
            {
                if (!image.IsActive) continue;
                image.Inactivate();
                inactivated.Add(image);
            }
            using (var state = new MemoryStream())
            {
                _vm.SaveMachineState(state);
                writer.WriteState(state.GetBuffer().AsSpan(0, (int)state.Length));
            }
            writer.WriteEnd();
            writer.Flush();
            if (channel.Socket is { } socket)
            {
                socket.ReceiveTimeout = (int)AckTimeout.TotalMilliseconds;
                MigrationAck ack;
                try
                {
                    do ack = MigrationAck.ReadFrom(net);
                    while (ack.Round is not null); // the stop-and-copy round's own acknowledgement
                }
                catch (IOException ex)
                {
                    throw new MigrationException($"no acknowledgement from the target within {AckTimeout.TotalSeconds:0} s or the connection dropped ({ex.Message})", ex);
                }
                if (!ack.Accepted) throw new MigrationException($"the target refused the migration: {ack.Message}");
            }
            lock (_gate) _downtimeMs = (long)Stopwatch.GetElapsedTime(downtimeStart).TotalMilliseconds;
            pausedHere = false;
            inactivated.Clear();
            Finish(MigrationStatus.Completed, null);
            _log.LogInformation("migration to {Uri} completed: {Total} ms total, {Down} ms downtime, {Rounds} rounds, {Bytes} bytes",
                uri, _totalMs, _downtimeMs, _rounds, _writer?.BytesWritten);
        }
        catch (Exception ex)
        {
            bool cancelled = _cancel.IsCancellationRequested;
            string message = cancelled ? "the migration was cancelled" : Describe(ex);
            foreach (var image in inactivated)
            {
                try { image.Activate(); }
                catch (Exception again) { _log.LogError("migration: cannot take the disk back: {Message}", again.Message); }
            }
            if (pausedHere && _vm.State == VmState.Paused)
            {
                try { _vm.Resume(); }
                catch (InvalidVmTransitionException) { }
            }
            if (!cancelled) _log.LogError("migration to {Uri} failed: {Message}; the guest goes on running here", uri, message);
            Finish(cancelled ? MigrationStatus.Cancelled : MigrationStatus.Failed, cancelled ? null : message);
        }
        finally
        {
            tracker?.Dispose();
            lock (_gate)
            {
                _channel?.Dispose();
                _channel = null;
            }
        }
    }

    private string Describe(Exception ex)
    {
        if (ex is MigrationException) return ex.Message;
        string? refusal = TryReadRefusal();
        if (refusal is not null) return $"the target refused the migration: {refusal}";
        return ex is IOException or SocketException or ObjectDisposedException
            ? $"the migration connection failed: {ex.Message}"
            : $"{ex.GetType().Name}: {ex.Message}";
    }

    /// <summary>After a write failed: the target may have said why before it hung up.</summary>
    private string? TryReadRefusal()
    {
        Socket? s;
        lock (_gate) s = _channel?.Socket;
        if (s is null) return null;
        try
        {
            s.ReceiveTimeout = 2000;
            using var net = new NetworkStream(s, ownsSocket: false);
            var ack = MigrationAck.ReadFrom(net);
            return ack.Accepted ? null : ack.Message;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or MigrationException)
        {
            return null;
        }
    }

    private Socket Connect(MigrationUri uri)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token);
            timeout.CancelAfter(ConnectTimeout);
            socket.ConnectAsync(uri.Host, uri.Port, timeout.Token).AsTask().GetAwaiter().GetResult();
            return socket;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            if (_cancel.IsCancellationRequested) throw;
            throw new MigrationException(ex is OperationCanceledException
                ? $"cannot connect to {uri}: no answer within {ConnectTimeout.TotalSeconds:0} s"
                : $"cannot connect to {uri}: {ex.Message} (is the target started with --incoming {uri}?)", ex);
        }
    }

    /// <summary>
    /// Waits until the target has applied the round just sent. Without this the target could lag seconds behind a
    /// fast source on a loaded host, and that backlog would land in the downtime; with it, a round's time (and so the
    /// bandwidth estimate) runs from the first page sent to the last page applied.
    /// </summary>
    private void AwaitRound(MigrationStreamWriter writer, MigrationChannel channel)
    {
        long start = Stopwatch.GetTimestamp();
        writer.Flush();
        if (channel.Socket is not { } socket) return; // one-way (a file): nothing comes back
        var net = channel.Stream;
        socket.ReceiveTimeout = (int)AckTimeout.TotalMilliseconds;
        MigrationAck ack;
        try
        {
            ack = MigrationAck.ReadFrom(net);
        }
        catch (IOException ex)
        {
            throw new MigrationException($"the target did not confirm round {_rounds} within {AckTimeout.TotalSeconds:0} s or the connection dropped ({ex.Message})", ex);
        }
        if (!ack.Accepted) throw new MigrationException($"the target refused the migration: {ack.Message}");
        if (ack.Round != _rounds) throw new MigrationException($"the target confirmed round {ack.Round?.ToString() ?? "(final)"} where round {_rounds} was expected");
        double drained = Stopwatch.GetElapsedTime(start).TotalSeconds;
        lock (_gate)
        {
            double seconds = _lastRoundSeconds + drained;
            if (seconds > 0 && _lastRoundBytes >= 256 * 1024) _bandwidth = _lastRoundBytes / seconds;
        }
    }

    /// <summary>Milliseconds the given dirty pages would take at the measured bandwidth.</summary>
    private long Expected(long dirtyPages)
    {
        if (dirtyPages == 0) return 0;
        double bw = _bandwidth;
        if (bw <= 0) return long.MaxValue;
        return (long)Math.Ceiling(dirtyPages * (double)PageSize * 1000 / bw);
    }

    /// <summary>Sends the pages set in <paramref name="bitmaps"/> (zero pages as markers) and an iteration marker.</summary>
    private void SendRound(MigrationStreamWriter writer, MigrationChannel channel, ulong[][] bitmaps, bool throttle)
    {
        try { PassStarted?.Invoke(_rounds + 1); }
        catch (Exception ex) { _log.LogWarning(ex, "a migration pass listener failed"); }
        var socket = channel.Socket;
        long start = Stopwatch.GetTimestamp();
        long startBytes = writer.BytesWritten;
        var regions = _vm.Memory.Regions;
        for (int r = 0; r < regions.Count; r++)
        {
            var region = regions[r];
            var bits = bitmaps[r];
            long pages = (long)(region.Size >> PageShift);
            long p = 0;
            while (p < pages)
            {
                // Skip to the next dirty page a word at a time.
                ulong word = bits[p >> 6] >> (int)(p & 63);
                if (word == 0)
                {
                    p = (p | 63) + 1;
                    continue;
                }
                p += BitOperations.TrailingZeroCount(word);
                if (p >= pages) break;
                long first = p;
                while (p < pages && p - first < MaxRunPages && (bits[p >> 6] & (1UL << (int)(p & 63))) != 0) p++;
                SendRun(writer, region, first, (int)(p - first));
                if (throttle) Throttle(writer, start, startBytes);
                if (socket is not null) CheckPeer(socket);
                ThrowIfCancelled();
            }
            Array.Clear(bits);
        }
        writer.WriteIterationEnd(_rounds + 1);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        long bytes = writer.BytesWritten - startBytes;
        lock (_gate)
        {
            _rounds++;
            _lastRoundBytes = bytes;
            _lastRoundSeconds = seconds;
            if (seconds > 0)
            {
                _mbps = bytes * 8 / seconds / 1e6;
                // Tiny rounds measure overheads, not the link: keep the estimate from a real one (AwaitRound refines it).
                if (bytes >= 256 * 1024 || _bandwidth <= 0) _bandwidth = bytes / seconds;
            }
        }
    }

    /// <summary>Copies a run out of guest RAM first, so the checksum and the data sent agree while the guest writes on.</summary>
    private void SendRun(MigrationStreamWriter writer, MemoryRegion region, long firstPage, int count)
    {
        ulong gpa = region.GuestBase + ((ulong)firstPage << PageShift);
        var data = _run.AsSpan(0, count * PageSize);
        _vm.Memory.Read(gpa, data);
        int i = 0;
        long zero = 0, normal = 0;
        while (i < count)
        {
            bool isZero = IsZero(data, i);
            int j = i + 1;
            while (j < count && IsZero(data, j) == isZero) j++;
            ulong at = gpa + ((ulong)i << PageShift);
            if (isZero)
            {
                writer.WriteZeroPages(at, j - i);
                zero += j - i;
            }
            else
            {
                writer.WritePages(at, data.Slice(i * PageSize, (j - i) * PageSize));
                normal += j - i;
            }
            i = j;
        }
        lock (_gate)
        {
            _duplicate += zero;
            _normal += normal;
        }
    }

    private static bool IsZero(Span<byte> data, int page) => data.Slice(page * PageSize, PageSize).IndexOfAnyExcept((byte)0) < 0;

    private void Throttle(MigrationStreamWriter writer, long start, long startBytes)
    {
        long limit = _parameters.MaxBandwidth;
        if (limit <= 0) return;
        double due = (writer.BytesWritten - startBytes) / (double)limit;
        double ahead = due - Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (ahead > 0.001) _cancel.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(ahead));
    }

    /// <summary>The target says nothing until the end unless it refuses: a byte waiting to be read is a refusal.</summary>
    private static void CheckPeer(Socket socket)
    {
        if (socket.Available > 0) throw new IOException("the target sent a reply before the end of the stream");
    }

    private void ThrowIfCancelled() => _cancel.Token.ThrowIfCancellationRequested();

    private void Finish(MigrationStatus status, string? error)
    {
        lock (_gate)
        {
            _totalMs = _since.ElapsedMilliseconds;
            _error = error;
            if (_writer is not null) _transferred = _writer.BytesWritten;
            _writer = null;
        }
        SetStatus(status);
    }

    private void SetStatus(MigrationStatus status)
    {
        lock (_gate)
        {
            if (_status == status) return;
            _status = status;
        }
        try { StatusChanged?.Invoke(status); }
        catch (Exception ex) { _log.LogWarning(ex, "a migration status listener failed"); }
    }

    private void PauseAround(Action action)
    {
        bool paused = false;
        if (_vm.State == VmState.Running)
        {
            try
            {
                _vm.Pause();
                paused = true;
            }
            catch (InvalidVmTransitionException) { }
        }
        try { action(); }
        finally
        {
            if (paused)
            {
                try { _vm.Resume(); }
                catch (InvalidVmTransitionException) { }
            }
        }
    }
}
