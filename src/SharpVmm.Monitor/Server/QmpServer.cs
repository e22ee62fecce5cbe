using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Machine;
using SharpVmm.Monitor.Commands;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Monitor.Server;

/// <summary>
/// A QMP monitor for one VM, as QEMU's <c>-qmp</c> offers: listens on a UNIX socket or loopback TCP, serves up to
/// <see cref="QmpServerOptions.MaxClients"/> clients at once (each negotiates on its own), and sends VM events to every negotiated client.
/// Create it with <see cref="Start"/>; dispose it after the VM has exited so the last replies and the SHUTDOWN
/// event reach the clients.
/// </summary>
public sealed class QmpServer : IAsyncDisposable, IDisposable
{
    private readonly Socket _listener;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<QmpSession> _sessions = [];
    private readonly Dictionary<QmpSession, Task> _sessionTasks = [];
    private readonly TaskCompletionSource _quit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _maxQueued;
    private readonly int _maxClients;
    private Task? _acceptLoop;
    private int _nextId, _disposed;

    private QmpServer(VirtualMachine vm, Socket listener, QmpAddress address, QmpServerOptions options)
    {
        _listener = listener;
        _log = options.Logger ?? NullLogger.Instance;
        _maxQueued = options.MaxQueuedMessages;
        _maxClients = Math.Max(1, options.MaxClients);
        Version = options.Version;
        FlushTimeout = options.FlushTimeout;
        Address = address;
        Monitor = new VmMonitor(vm, Broadcast) { PowerButton = options.PowerButton };
        Monitor.QuitRequested += () =>
        {
            _quit.TrySetResult();
            QuitRequested?.Invoke();
        };
        Commands = new QmpCommandTable();
        CoreCommands.Register(Commands, Monitor, Version);
        BlockCommands.Register(Commands, Monitor);
        BlockCommands.RegisterEvents(vm, Broadcast);
        SnapshotCommands.Register(Commands, Monitor);
        Fds = QmpFdTable.Register(Commands);
        MigrationCommands.Register(Commands, Monitor, Broadcast, options.Migration ?? new Machine.Migration.MigrationManager(vm), Fds);
        MemoryCommands.Register(Commands, Monitor, Broadcast);
        JitCommands.Register(Commands, Monitor);
        if (!options.StartClosed) Open();
    }

    /// <summary>Starts serving clients (once); see <see cref="QmpServerOptions.StartClosed"/>.</summary>
    public void Open()
    {
        lock (_sessions) _acceptLoop ??= Task.Run(AcceptLoopAsync);
    }

    /// <summary>Binds <paramref name="address"/> (socket path, unix:PATH or tcp:127.0.0.1:PORT; port 0 picks one) and starts serving.</summary>
    public static QmpServer Start(VirtualMachine vm, string address, QmpServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var parsed = QmpAddress.ForListening(address);
        var listener = Bind(parsed);
        try
        {
            if (listener.LocalEndPoint is IPEndPoint bound) parsed = parsed with { EndPoint = bound };
            return new QmpServer(vm, listener, parsed, options ?? new QmpServerOptions());
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Serves on a socket that is already bound and listening, e.g. one inherited from the process that started us
    /// (libvirt's <c>-chardev socket,fd=N,server=on</c>): the socket file is the caller's and is left in place.
    /// </summary>
    public static QmpServer StartOnListener(VirtualMachine vm, Socket listener, QmpServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(listener);
        var address = new QmpAddress(listener.LocalEndPoint ?? new UnixDomainSocketEndPoint("@inherited"), null);
        return new QmpServer(vm, listener, address, options ?? new QmpServerOptions());
    }

    /// <summary>Where clients connect, with the real port when 0 was asked: "unix:/path" or "tcp:127.0.0.1:PORT".</summary>
    public QmpAddress Address { get; }

    public QmpVersion Version { get; }
    internal TimeSpan FlushTimeout { get; }

    /// <summary>The VM as the commands see it (run-state names, lifecycle with QEMU's answers).</summary>
    public VmMonitor Monitor { get; }

    /// <summary>Descriptors clients passed with getfd, by name.</summary>
    public QmpFdTable Fds { get; }

    /// <summary>The command table: register commands of features built later here (they then appear in query-commands).</summary>
    public QmpCommandTable Commands { get; }

    /// <summary>Raised when a client ran quit: the VM is stopped, SHUTDOWN sent, the reply queued. The host may now exit.</summary>
    public event Action? QuitRequested;

    /// <summary>Completes when a client ran quit; see <see cref="QuitRequested"/>.</summary>
    public Task QuitTask => _quit.Task;

    public int ClientCount
    {
        get { lock (_sessions) return _sessions.Count; }
    }

    /// <summary>Sessions still being served or wound down (for tests: nothing of a closed client may stay).</summary>
    public int SessionTaskCount
    {
        get { lock (_sessions) return _sessionTasks.Count; }
    }

    /// <summary>Sends an event to every client that has negotiated capabilities (QEMU sends none before).</summary>
    public void Broadcast(string name, JsonObject? data)
    {
        long micros = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
        var message = new JsonObject
        {
            ["timestamp"] = new JsonObject { ["seconds"] = micros / 1_000_000, ["microseconds"] = micros % 1_000_000 },
            ["event"] = name,
        };
        if (data is not null) message["data"] = data;
        byte[] line = QmpJson.ToLine(message);
        QmpSession[] targets;
        lock (_sessions) targets = [.. _sessions];
        foreach (var s in targets)
            if (s.Negotiated) s.Enqueue(line);
        _log.LogDebug("QMP event {Event}", name);
    }

    private static Socket Bind(QmpAddress address)
    {
        if (address.SocketPath is { } path) PrepareSocketPath(path);
        var socket = address.IsUnix
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(address.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(address.EndPoint);
            socket.Listen(16);
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new QmpAddressException($"cannot listen for QMP on {address}: {ex.Message}");
        }
    }

    /// <summary>Removes a stale socket left by a crashed run, but never a file with data or a socket someone is serving.</summary>
    private static void PrepareSocketPath(string path)
    {
        if (Directory.Exists(path))
            throw new QmpAddressException($"cannot listen for QMP on '{path}': it is a directory");
        var info = new FileInfo(path);
        if (!info.Exists) return;
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new QmpAddressException($"cannot listen for QMP on '{path}': another process is serving it");
            }
            catch (SocketException) { }
        }
        // Only a leftover socket is replaced; any other file is someone's (even an empty regular file).
        if (SharpVmm.Block.HostFile.KindOf(path) != SharpVmm.Block.HostFileKind.Socket)
            throw new QmpAddressException($"cannot listen for QMP on '{path}': it {SharpVmm.Block.HostFile.Describe(SharpVmm.Block.HostFile.KindOf(path))} (a regular file or other non-socket); remove it or pick another path");
        File.Delete(path);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of descriptors and the like: keep serving the clients we have, try again shortly.
                _log.LogWarning("QMP accept failed: {Message}", ex.Message);
                try { await Task.Delay(100, _stop.Token); } catch (OperationCanceledException) { return; }
                continue;
            }
            bool full;
            lock (_sessions) full = _sessions.Count >= _maxClients;
            if (full)
            {
                Refuse(client);
                continue;
            }
            var session = new QmpSession(this, client, Interlocked.Increment(ref _nextId), _maxQueued, _log);
            lock (_sessions)
            {
                _sessions.Add(session);
                _sessionTasks[session] = RunSessionAsync(session);
            }
        }
    }

    private async Task RunSessionAsync(QmpSession session)
    {
        await Task.Yield();
        try
        {
            await session.RunAsync(_stop.Token);
        }
        finally
        {
            // Everything the client held goes with it: its session and the task that served it.
            lock (_sessions)
            {
                _sessions.Remove(session);
                _sessionTasks.Remove(session);
            }
        }
    }

    /// <summary>One QMP error line (no greeting: the client is not served) and the connection is closed.</summary>
    private void Refuse(Socket client)
    {
        _log.LogWarning("QMP: refused a connection: {Max} clients are connected already", _maxClients);
        try
        {
            client.Blocking = false;
            client.Send(QmpJson.ToLine(new JsonObject
            {
                ["error"] = new JsonObject
                {
                    ["class"] = "GenericError",
                    ["desc"] = $"too many QMP clients: {_maxClients} are connected already",
                },
            }));
        }
        catch (SocketException) { }
        finally { client.Dispose(); }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        _listener.Dispose();
        Task? accepting;
        lock (_sessions) accepting = _acceptLoop;
        try { if (accepting is not null) await accepting; } catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException) { }
        Task[] running;
        lock (_sessions) running = [.. _sessionTasks.Values];
        // Sessions flush what is queued (the quit reply, SHUTDOWN) within FlushTimeout, then close.
        await Task.WhenAll(running).ConfigureAwait(false);
        Monitor.Dispose();
        Fds.Dispose();
        if (Address.SocketPath is { } path)
        {
            try { File.Delete(path); } catch (IOException) { }
        }
        _stop.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
