using System.Net.Sockets;

namespace SharpVmm.Devices.Serial;

/// <summary>
/// A UNIX stream socket the VMM listens on (QEMU's <c>unix:PATH,server,nowait</c>): one client at a time is
/// the console; output while nobody is connected is dropped, as on a serial line with no cable.
/// </summary>
public sealed class UnixSocketBackend : ICharBackend
{
    private readonly string _path;
    private readonly Socket _listener;
    private readonly object _gate = new();
    private Socket? _client;
    private Thread? _acceptor;
    private volatile bool _disposed;

    public UnixSocketBackend(string path)
    {
        _path = path;
        // A path too long for sockaddr_un, or a file that is not a socket (someone's data), is refused: only a stale
        // socket from an earlier run is replaced (binding over it would fail with EADDRINUSE).
        if (Block.HostFile.SocketPathProblem(path, "serial/console") is { } problem) throw new Core.ConfigurationException(problem);
        if (Block.HostFile.KindOf(path) == Block.HostFileKind.Socket) File.Delete(path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            _listener.Listen(1);
        }
        catch (SocketException ex)
        {
            _listener.Dispose();
            throw new Core.ConfigurationException($"cannot listen on serial socket '{path}': {ex.Message}");
        }
    }

    public string Path => _path;

    public void Write(ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            if (_client is null) return;
            try { _client.Send(data); }
            catch (SocketException) { DropClient(); }
            catch (ObjectDisposedException) { _client = null; }
        }
    }

    public void Start(Action<ReadOnlySpan<byte>> onInput)
    {
        _acceptor = new Thread(() => AcceptLoop(onInput)) { IsBackground = true, Name = "serial-unix" };
        _acceptor.Start();
    }

    private void AcceptLoop(Action<ReadOnlySpan<byte>> onInput)
    {
        var buf = new byte[256];
        while (!_disposed)
        {
            Socket c;
            try { c = _listener.Accept(); }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { return; }
            lock (_gate) { DropClient(); _client = c; }
            try
            {
                int n;
                while ((n = c.Receive(buf)) > 0) onInput(buf.AsSpan(0, n));
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
            lock (_gate) if (_client == c) DropClient();
        }
    }

    private void DropClient()
    {
        _client?.Dispose();
        _client = null;
    }

    public void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
        lock (_gate) DropClient();
        try { File.Delete(_path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
