using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SharpVmm.Core;
using SharpVmm.Monitor.Commands;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Monitor.Server;

/// <summary>
/// One client connection: greeting, capabilities negotiation, then requests answered in order. Replies and
/// events share one queue drained by a writer task, so a slow client never blocks the VM or other clients;
/// a client that stops reading altogether is disconnected once its queue is full.
/// </summary>
internal sealed class QmpSession
{
    private readonly QmpServer _server;
    private readonly Socket _socket;
    private readonly Channel<byte[]> _out;
    private readonly ILogger _log;
    private readonly int _id;
    private volatile bool _negotiated;
    // Descriptors that came with the client's bytes (SCM_RIGHTS), for getfd; only the read loop's thread touches it.
    private readonly List<int> _fds = [];

    public QmpSession(QmpServer server, Socket socket, int id, int maxQueued, ILogger log)
    {
        _server = server;
        _socket = socket;
        _id = id;
        _log = log;
        _out = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(maxQueued) { SingleReader = true });
    }

    public bool Negotiated => _negotiated;

    public async Task RunAsync(CancellationToken stop)
    {
        var writer = Task.Run(WriteLoopAsync);
        Send(new JsonObject
        {
            ["QMP"] = new JsonObject { ["version"] = CoreCommands.VersionObject(_server.Version), ["capabilities"] = new JsonArray() },
        });
        try
        {
            await ReadLoopAsync(stop);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // client gone or server closing: nothing to answer
        }
        catch (Exception ex)
        {
            _log.LogError(ex, "QMP client {Id}: session failed", _id);
        }
        foreach (int fd in _fds) UnixFdPassing.Close(fd);
        _fds.Clear();
        _out.Writer.TryComplete();
        await Task.WhenAny(writer, Task.Delay(_server.FlushTimeout, CancellationToken.None));
        Close();
        await writer.ConfigureAwait(false);
    }

    private async Task ReadLoopAsync(CancellationToken stop)
    {
        var splitter = new JsonStreamSplitter();
        var chunks = new List<JsonChunk>();
        var buffer = new byte[8192];
        var peek = new byte[1];
        var arrived = new List<int>();
        while (true)
        {
            // Wait for data without taking it, then take it with recvmsg so descriptors sent along are kept.
            if (await _socket.ReceiveAsync(peek, SocketFlags.Peek, stop) == 0) return;
            arrived.Clear();
            int n = UnixFdPassing.Receive(_socket, buffer, arrived);
            if (n < 0) continue;
            if (n == 0) return;
            if (arrived.Count > 0)
            {
                // As QEMU: descriptors no command claimed before the next ones arrived are closed.
                foreach (int old in _fds) UnixFdPassing.Close(old);
                _fds.Clear();
                _fds.AddRange(arrived);
            }
            chunks.Clear();
            splitter.Feed(buffer.AsSpan(0, n), chunks);
            foreach (var chunk in chunks)
            {
                if (chunk.Error is not null) SendError(QmpException.Generic(chunk.Error), null, false);
                else Handle(chunk.Text!);
            }
        }
    }

    private void Handle(byte[] text)
    {
        var request = QmpRequest.Parse(text, out var envelopeError, out var id, out bool hasId);
        if (request is null)
        {
            SendError(envelopeError!, id, hasId);
            return;
        }
        if (!_negotiated)
        {
            if (request.Command != CoreCommands.Capabilities)
            {
                SendError(new QmpException(QmpErrorClass.CommandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'"), request.Id, request.HasId);
                return;
            }
            try
            {
                CheckCapabilities(request.Arguments);
            }
            catch (QmpException ex)
            {
                SendError(ex, request.Id, request.HasId);
                return;
            }
            _negotiated = true;
            SendReturn(null, request.Id, request.HasId);
            return;
        }

        var call = new QmpCall(request.Command, request.Arguments) { ReceivedFd = TakeFd };
        JsonNode? result;
        try
        {
            result = _server.Commands.Invoke(call);
        }
        catch (QmpException ex)
        {
            SendError(ex, request.Id, request.HasId);
            return;
        }
        catch (Exception ex) when (ex is VmmException or InvalidOperationException or FormatException or JsonException)
        {
            SendError(QmpException.Generic(ex.Message), request.Id, request.HasId);
            return;
        }
        catch (Exception ex)
        {
            _log.LogError(ex, "QMP command {Command} failed", request.Command);
            SendError(QmpException.Generic($"internal error in '{request.Command}': {ex.Message}"), request.Id, request.HasId);
            return;
        }
        SendReturn(result, request.Id, request.HasId);
        try
        {
            call.RunAfterReply();
        }
        catch (Exception ex)
        {
            _log.LogError(ex, "QMP command {Command}: a follow-up action failed", request.Command);
        }
    }

    /// <summary>The last descriptor the client sent and no command claimed yet; -1 if none.</summary>
    private int TakeFd()
    {
        if (_fds.Count == 0) return -1;
        int fd = _fds[^1];
        _fds.RemoveAt(_fds.Count - 1);
        return fd;
    }

    /// <summary>No capabilities are offered (no "oob"), so the only valid "enable" is an empty list.</summary>
    private static void CheckCapabilities(JsonObject args)
    {
        foreach (var (key, value) in args)
        {
            if (key != "enable") throw QmpException.Generic($"Parameter '{key}' is unexpected");
            if (value is not JsonArray list) throw QmpException.Generic("Invalid parameter type for 'enable', expected: array");
            foreach (var item in list)
            {
                if (item is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
                    throw QmpException.Generic("Invalid parameter type for 'enable[0]', expected: string");
                string cap = v.GetValue<string>();
                throw QmpException.Generic(cap == "oob"
                    ? "This monitor does not support Out-Of-Band (OOB)"
                    : $"Parameter 'enable' does not accept value '{cap}'");
            }
        }
    }

    private void SendReturn(JsonNode? result, JsonNode? id, bool hasId)
    {
        var reply = new JsonObject { ["return"] = result ?? new JsonObject() };
        if (hasId) reply["id"] = id;
        Send(reply);
    }

    private void SendError(QmpException error, JsonNode? id, bool hasId)
    {
        var reply = new JsonObject
        {
            ["error"] = new JsonObject { ["class"] = error.ErrorClass, ["desc"] = error.Description },
        };
        if (hasId) reply["id"] = id;
        Send(reply);
    }

    private void Send(JsonObject message) => Enqueue(QmpJson.ToLine(message));

    /// <summary>Queues one message; never blocks (events are sent from VM threads).</summary>
    public void Enqueue(byte[] line)
    {
        if (_out.Writer.TryWrite(line)) return;
        if (_out.Reader.Completion.IsCompleted) return; // closing
        _log.LogWarning("QMP client {Id} is not reading its messages: disconnecting it", _id);
        _out.Writer.TryComplete();
        Close();
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await foreach (var line in _out.Reader.ReadAllAsync())
            {
                int sent = 0;
                while (sent < line.Length)
                    sent += await _socket.SendAsync(line.AsMemory(sent), SocketFlags.None);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // client gone: the read side notices and ends the session
            Close();
        }
    }

    private int _closed;

    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
    }

    /// <summary>Ends the session's output after what is queued: the server is closing.</summary>
    public void CompleteOutput() => _out.Writer.TryComplete();
}
