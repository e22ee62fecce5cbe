using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpVmm.Monitor.Tests;

/// <summary>A byte-level QMP peer: sends exactly what a test writes and reads whole CRLF-terminated lines.</summary>
internal sealed class RawQmp : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly List<byte> _pending = [];
    private readonly byte[] _buffer = new byte[65536];

    public RawQmp(string path)
    {
        _socket.Connect(new UnixDomainSocketEndPoint(path));
        _socket.ReceiveTimeout = 10_000;
    }

    /// <summary>Connects, checks the greeting line and negotiates.</summary>
    public static RawQmp Negotiated(string path)
    {
        var q = new RawQmp(path);
        Assert.Contains("\"QMP\"", q.ReadLine());
        q.Send("{\"execute\": \"qmp_capabilities\"}\n");
        Assert.Equal("{\"return\": {}}", q.ReadLine());
        return q;
    }

    public void Send(string text) => _socket.Send(Encoding.UTF8.GetBytes(text));

    /// <summary>The next line, without its CRLF; fails if the line does not end in CRLF.</summary>
    public string ReadLine()
    {
        while (true)
        {
            int nl = _pending.IndexOf((byte)'\n');
            if (nl >= 0)
            {
                string line = Encoding.UTF8.GetString(_pending.GetRange(0, nl + 1).ToArray());
                _pending.RemoveRange(0, nl + 1);
                Assert.EndsWith("\r\n", line);
                return line[..^2];
            }
            int n;
            try { n = _socket.Receive(_buffer); }
            catch (SocketException ex) { throw new TimeoutException("no line from the server within 10 s", ex); }
            if (n == 0) throw new EndOfStreamException("the server closed the connection");
            _pending.AddRange(_buffer.AsSpan(0, n));
        }
    }

    public JsonObject ReadObject() => (JsonObject)JsonNode.Parse(ReadLine())!;

    /// <summary>Reads until a non-event message arrives; events seen on the way are returned in order.</summary>
    public (JsonObject Reply, List<JsonObject> Events) ReadReply()
    {
        var events = new List<JsonObject>();
        while (true)
        {
            var o = ReadObject();
            if (o.ContainsKey("event")) events.Add(o);
            else return (o, events);
        }
    }

    public JsonObject Execute(string json)
    {
        Send(json + "\n");
        return ReadReply().Reply;
    }

    /// <summary>True if nothing arrives within <paramref name="ms"/> milliseconds.</summary>
    public bool IsQuiet(int ms)
    {
        if (_pending.Count > 0) return false;
        return !_socket.Poll(ms * 1000, SelectMode.SelectRead);
    }

    public void Dispose() => _socket.Dispose();
}
