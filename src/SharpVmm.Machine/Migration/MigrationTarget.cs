using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Machine.Lifecycle;
using static SharpVmm.Machine.Migration.MigrationProtocol;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// The incoming side of a live migration: listens, accepts one source, checks that it describes a VM like this one,
/// writes the pages it sends into RAM, loads the machine state, takes over the disks and acknowledges. The VM must be
/// freshly built and not started; the caller starts it once <see cref="Receive"/> returns. Anything wrong with the
/// stream (truncated, corrupt, incompatible) is refused with a <see cref="MigrationException"/>, the source is told
/// why, and the guest must not be started.
/// </summary>
public sealed class MigrationTarget : IDisposable
{
    private readonly VirtualMachine _vm;
    private readonly ILogger _log;
    private readonly object _gate = new();
    private readonly Stopwatch _since = new();
    private Socket? _listener;
    private MigrationChannel? _channel;
    private MigrationStatus _status = MigrationStatus.None;
    private long _received, _normal, _duplicate, _totalMs = -1;
    private int _rounds;
    private string? _error;
    private MigrationStreamReader? _reader;

    public MigrationTarget(VirtualMachine vm, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        _vm = vm;
        _log = logger ?? NullLogger.Instance;
    }

    public event Action<MigrationStatus>? StatusChanged;

    public MigrationStatus Status { get { lock (_gate) return _status; } }

    /// <summary>
    /// Whether the disks are opened as soon as the stream has arrived (true, QEMU's default) or left for the caller
    /// to open when the guest is started (false: QEMU's late-block-activate).
    /// </summary>
    public bool ActivateDisksOnCompletion { get; init; } = true;

    /// <summary>The address actually listened on (with the real port when 0 was asked), once <see cref="Listen"/> ran.</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    public MigrationStats Stats
    {
        get
        {
            lock (_gate)
            {
                return new MigrationStats
                {
                    Status = _status,
                    Transferred = _reader?.Offset ?? _received,
                    Total = (long)_vm.Memory.TotalSize,
                    Duplicate = _duplicate,
                    Normal = _normal,
                    Rounds = _rounds,
                    TotalTimeMs = _totalMs >= 0 ? _totalMs : _since.ElapsedMilliseconds,
                    Error = _error,
                };
            }
        }
    }

    /// <summary>Binds the listening socket (QEMU listens as soon as -incoming is given).</summary>
    public void Listen(MigrationUri uri)
    {
        lock (_gate)
        {
            if (_listener is not null) throw new InvalidOperationException("already listening");
            var address = uri.ListenAddress();
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(new IPEndPoint(address, uri.Port));
                socket.Listen(1);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                throw new MigrationException($"cannot listen for the incoming migration on {uri}: {ex.Message}", ex);
            }
            _listener = socket;
            LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
        }
        SetStatus(MigrationStatus.Setup);
    }

    /// <summary>Receives from an already open channel (<c>fd:</c>: a descriptor inherited or handed over); the target owns it.</summary>
    public void Attach(MigrationChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        lock (_gate)
        {
            if (_listener is not null || _channel is not null)
            {
                channel.Dispose();
                throw new InvalidOperationException("already listening");
            }
            _channel = channel;
        }
        SetStatus(MigrationStatus.Setup);
    }

    /// <summary>
    /// Waits for the source, receives RAM and state, and returns once the VM is ready to <see cref="VirtualMachine.Start"/>.
    /// Throws <see cref="MigrationException"/> when the stream is refused; <paramref name="cancel"/> stops the wait.
    /// </summary>
    public void Receive(CancellationToken cancel = default)
    {
        Socket? listener;
        MigrationChannel? channel;
        lock (_gate)
        {
            listener = _listener;
            channel = _channel;
        }
        if (listener is null && channel is null) throw new InvalidOperationException("call Listen or Attach first");
        if (_vm.State != VmState.Created)
            throw new MigrationException($"an incoming migration needs a VM that has not started; this one is {_vm.State.ToString().ToLowerInvariant()}");
        if (listener is not null)
        {
            var accepting = listener.AcceptAsync(cancel);
            StateCodeWarmup.Run(); // while no source is there yet
            Socket connection;
            try
            {
                connection = accepting.AsTask().GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                Fail("no migration arrived: " + (ex is OperationCanceledException ? "the wait was cancelled" : ex.Message));
                throw new MigrationException($"no migration arrived: {(ex is OperationCanceledException ? "the wait was cancelled" : ex.Message)}", ex);
            }
            listener.Dispose(); // one source per incoming migration, as QEMU
            connection.NoDelay = true;
            channel = MigrationChannel.ForSocket(connection, "incoming migration");
            lock (_gate) _channel = channel;
        }
        else StateCodeWarmup.Run();
        _since.Restart();
        SetStatus(MigrationStatus.Active);
        using var owned = channel!;
        using var onCancel = cancel.Register(channel!.Dispose);
        try
        {
            ReceiveStream(channel);
        }
        catch (Exception ex) when (ex is MigrationException or IOException or ObjectDisposedException or Core.VmmException or InvalidDataException or EndOfStreamException)
        {
            var error = ex as MigrationException ?? new MigrationException(
                ex is IOException or ObjectDisposedException ? $"the migration connection failed: {ex.Message}" : $"the machine state could not be loaded: {ex.Message}", ex);
            Refuse(channel, error.Message);
            Fail(error.Message);
            throw error;
        }
        lock (_gate) _totalMs = _since.ElapsedMilliseconds;
        SetStatus(MigrationStatus.Completed);
    }

    private void ReceiveStream(MigrationChannel channel)
    {
        var net = channel.Stream;
        var reader = new MigrationStreamReader(net);
        lock (_gate) _reader = reader;
        var header = reader.ReadHeader();
        header.CheckCompatibleWith(MigrationHeader.Describe(_vm));
        var memory = _vm.Memory;
        byte[]? state = null;
        while (true)
        {
            var kind = reader.Read();
            switch (kind)
            {
                case MigrationRecordKind.Pages:
                {
                    ulong length = (ulong)reader.PageCount * PageSize;
                    if (!memory.IsRam(reader.Gpa, length))
                        throw new MigrationException($"the migration stream is corrupt: it sends pages at 0x{reader.Gpa:x}+0x{length:x}, outside this VM's RAM; refusing it");
                    memory.Write(reader.Gpa, reader.Payload);
                    lock (_gate) _normal += reader.PageCount;
                    break;
                }
                case MigrationRecordKind.ZeroPages:
                {
                    ulong length = (ulong)reader.PageCount * PageSize;
                    if (!memory.IsRam(reader.Gpa, length))
                        throw new MigrationException($"the migration stream is corrupt: it zeroes pages at 0x{reader.Gpa:x}+0x{length:x}, outside this VM's RAM; refusing it");
                    for (int i = 0; i < reader.PageCount; i++)
                    {
                        // Pages this side never touched are already zero (and unallocated): reading them allocates nothing.
                        ulong at = reader.Gpa + ((ulong)i << PageShift);
                        if (memory.GetReadOnlySpan(at, PageSize).IndexOfAnyExcept((byte)0) >= 0) memory.Clear(at, PageSize);
                    }
                    lock (_gate) _duplicate += reader.PageCount;
                    break;
                }
                case MigrationRecordKind.IterationEnd:
                    lock (_gate) _rounds = reader.Round;
                    if (channel.TwoWay) MigrationAck.RoundReceived(reader.Round).WriteTo(net);
                    break;
                case MigrationRecordKind.State:
                    if (state is not null) throw new MigrationException("the migration stream is corrupt: it carries the machine state twice; refusing it");
                    state = reader.Payload.ToArray();
                    break;
                case MigrationRecordKind.End:
                    if (state is null) throw new MigrationException("the migration stream ended without the machine state (vCPUs and devices); refusing it");
                    Complete(channel, state);
                    lock (_gate) _received = reader.Offset;
                    return;
            }
        }
    }

    /// <summary>Loads the state, takes the disks over from the source (which closed them before sending the end) and acks.</summary>
    private void Complete(MigrationChannel channel, byte[] state)
    {
        using (var s = new MemoryStream(state, writable: false))
        {
            _vm.LoadMachineState(s);
            if (s.Position != s.Length)
                throw new MigrationException($"the migration stream is corrupt: {s.Length - s.Position} bytes follow the machine state in its record; refusing it");
        }
        if (ActivateDisksOnCompletion)
            foreach (var (_, image) in _vm.Devices.OfType<MigratableImage>()) image.Activate();
        if (channel.TwoWay) new MigrationAck(true, "loaded").WriteTo(channel.Stream);
        _log.LogInformation("incoming migration complete: {Bytes} bytes, {Normal} pages, {Zero} zero pages, {Rounds} rounds", _reader?.Offset, _normal, _duplicate, _rounds);
    }

    /// <summary>Tells the source why, then drains what it still sends for a moment so the close does not reset the connection before it reads the reason.</summary>
    private void Refuse(MigrationChannel channel, string message)
    {
        if (channel.Socket is not { } connection) return; // a file or pipe: nobody to tell
        try
        {
            new MigrationAck(false, message).WriteTo(channel.Stream);
            connection.Shutdown(SocketShutdown.Send);
            connection.ReceiveTimeout = 2000;
            var sink = new byte[64 * 1024];
            var until = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 5;
            while (Stopwatch.GetTimestamp() < until && connection.Receive(sink) > 0) { }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException) { }
    }

    private void Fail(string message)
    {
        lock (_gate)
        {
            _error = message;
            _totalMs = _since.ElapsedMilliseconds;
            if (_reader is not null) _received = _reader.Offset;
        }
        SetStatus(MigrationStatus.Failed);
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

    public void Dispose()
    {
        lock (_gate)
        {
            _listener?.Dispose();
            _channel?.Dispose();
        }
    }
}
