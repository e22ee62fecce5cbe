using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Client;

/// <summary>
/// A QMP client for SharpVmm or QEMU: reads the greeting, negotiates, runs commands one at a time (matched to
/// their replies by id) and collects events on the side.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Channel<JsonObject> _messages = Channel.CreateUnbounded<JsonObject>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<JsonObject> _events = Channel.CreateUnbounded<JsonObject>();
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly Task _reader;
    private long _nextId;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>The server's greeting, <c>{"QMP": {"version": ..., "capabilities": [...]}}</c>.</summary>
    public JsonObject Greeting { get; private set; } = [];

    /// <summary>Events received so far and later, in order.</summary>
    public ChannelReader<JsonObject> Events => _events.Reader;

    /// <summary>Connects to a socket path, unix:PATH or tcp:HOST:PORT and reads the greeting (not negotiated yet).</summary>
    public static async Task<QmpClient> ConnectAsync(string address, CancellationToken ct = default)
    {
        var parsed = QmpAddress.ForConnecting(address);
        var socket = parsed.IsUnix
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(parsed.EndPoint, ct);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new QmpConnectionException($"cannot connect to QMP at {address}: {ex.Message}", ex);
        }
        var client = new QmpClient(socket);
        try
        {
            var greeting = await client.NextMessageAsync(ct);
            if (greeting["QMP"] is not JsonObject)
                throw new QmpConnectionException($"{address} did not greet like a QMP server: {QmpJson.Format(greeting)}");
            client.Greeting = greeting;
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Connects and negotiates capabilities: ready for commands.</summary>
    public static async Task<QmpClient> ConnectAndNegotiateAsync(string address, CancellationToken ct = default)
    {
        var client = await ConnectAsync(address, ct);
        try
        {
            await client.ExecuteAsync("qmp_capabilities", null, ct);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a command and returns its "return" value; an error reply throws <see cref="QmpException"/> with its class and desc.</summary>
    public Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, CancellationToken ct = default)
        => ExecuteCoreAsync(command, arguments, -1, ct);

    /// <summary>
    /// Runs a command with a descriptor attached (SCM_RIGHTS, UNIX sockets only), as for QEMU's getfd; the server
    /// gets its own copy, the caller keeps <paramref name="fd"/>.
    /// </summary>
    public Task<JsonNode?> ExecuteWithFdAsync(string command, JsonObject? arguments, int fd, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        return ExecuteCoreAsync(command, arguments, fd, ct);
    }

    private async Task<JsonNode?> ExecuteCoreAsync(string command, JsonObject? arguments, int fd, CancellationToken ct)
    {
        await _oneAtATime.WaitAsync(ct);
        try
        {
            string id = "sharpvmm-" + Interlocked.Increment(ref _nextId);
            var request = new JsonObject { ["execute"] = command };
            if (arguments is not null) request["arguments"] = arguments.DeepClone();
            request["id"] = id;
            if (fd >= 0)
            {
                try { UnixFdPassing.Send(_socket, QmpJson.ToLine(request), fd); }
                catch (SocketException ex) { throw new QmpConnectionException($"the QMP connection failed: {ex.Message}", ex); }
            }
            else await SendAsync(QmpJson.ToLine(request), ct);
            while (true)
            {
                var message = await NextMessageAsync(ct);
                if (message["id"] is not JsonValue v || v.GetValueKind() != JsonValueKind.String || v.GetValue<string>() != id)
                    continue; // a reply without our id answers nothing we asked (e.g. a parse error); skip it
                if (message["error"] is JsonObject error)
                    throw new QmpException(error["class"]?.GetValue<string>() ?? "GenericError", error["desc"]?.GetValue<string>() ?? "(no description)");
                if (!message.ContainsKey("return"))
                    throw new QmpConnectionException($"a QMP reply has neither 'return' nor 'error': {QmpJson.Format(message)}");
                var result = message["return"];
                message.Remove("return");
                return result;
            }
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    /// <summary>Sends raw bytes (tests and tools that need to send what a well-behaved client would not).</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        try
        {
            while (data.Length > 0)
            {
                int n = await _socket.SendAsync(data, SocketFlags.None, ct);
                data = data[n..];
            }
        }
        catch (SocketException ex)
        {
            throw new QmpConnectionException($"the QMP connection failed: {ex.Message}", ex);
        }
    }

    /// <summary>The next non-event message: a greeting or a reply.</summary>
    public async Task<JsonObject> NextMessageAsync(CancellationToken ct = default)
    {
        try
        {
            return await _messages.Reader.ReadAsync(ct);
        }
        catch (ChannelClosedException ex)
        {
            throw ex.InnerException as QmpConnectionException ?? new QmpConnectionException("the QMP server closed the connection", ex);
        }
    }

    private async Task ReadLoopAsync()
    {
        var splitter = new JsonStreamSplitter();
        var chunks = new List<JsonChunk>();
        var buffer = new byte[16384];
        Exception? failure = null;
        try
        {
            while (true)
            {
                int n = await _socket.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0) break;
                chunks.Clear();
                splitter.Feed(buffer.AsSpan(0, n), chunks);
                foreach (var chunk in chunks)
                {
                    if (chunk.Error is not null) throw new QmpConnectionException($"the QMP server sent bad JSON: {chunk.Error}");
                    JsonNode? node;
                    try { node = JsonNode.Parse(chunk.Text!, documentOptions: QmpJson.ParseOptions); }
                    catch (JsonException ex) { throw new QmpConnectionException($"the QMP server sent bad JSON: {ex.Message}", ex); }
                    if (node is not JsonObject message) throw new QmpConnectionException("the QMP server sent something other than a JSON object");
                    if (message.ContainsKey("event")) _events.Writer.TryWrite(message);
                    else _messages.Writer.TryWrite(message);
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or QmpConnectionException)
        {
            failure = ex as QmpConnectionException;
        }
        _messages.Writer.TryComplete(failure);
        _events.Writer.TryComplete();
    }

    public async ValueTask DisposeAsync()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
        await _reader.ConfigureAwait(false);
        _oneAtATime.Dispose();
    }
}
