using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Monitor.Server;

/// <summary>
/// A QMP endpoint: a UNIX socket path (optionally written <c>unix:PATH</c>) or <c>tcp:HOST:PORT</c>. A server
/// listens on loopback only, because whoever reaches the socket controls the VM.
/// </summary>
public sealed record QmpAddress(EndPoint EndPoint, string? SocketPath)
{
    private const int MaxUnixPathBytes = 107; // sun_path is 108 bytes including the terminating NUL

    public bool IsUnix => SocketPath is not null;

    public override string ToString() => EndPoint switch
    {
        _ when SocketPath is not null => "unix:" + SocketPath,
        IPEndPoint ip when ip.AddressFamily == AddressFamily.InterNetworkV6 => $"tcp:[{ip.Address}]:{ip.Port}",
        IPEndPoint ip => $"tcp:{ip.Address}:{ip.Port}",
        _ => EndPoint.ToString() ?? "",
    };

    /// <summary>An address to listen on: a socket path, or tcp: with 127.0.0.1, ::1 or localhost and a port (0 picks a free one).</summary>
    public static QmpAddress ForListening(string text)
    {
        if (!TrySplitTcp(text, out string host, out string port)) return Unix(text);
        IPAddress? ip = host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var parsed) ? parsed : null;
        if (ip is null || !IPAddress.IsLoopback(ip))
            throw new QmpAddressException($"QMP listens on loopback only: '{text}' would let other machines control the VM. "
                + "Use tcp:127.0.0.1:PORT, tcp:[::1]:PORT or a UNIX socket path");
        return new QmpAddress(new IPEndPoint(ip, ParsePort(text, port, allowZero: true)), null);
    }

    /// <summary>An address to connect to: a socket path, or tcp:HOST:PORT with any host name or address.</summary>
    public static QmpAddress ForConnecting(string text)
    {
        if (!TrySplitTcp(text, out string host, out string port)) return Unix(text);
        int p = ParsePort(text, port, allowZero: false);
        EndPoint ep = IPAddress.TryParse(host, out var ip) ? new IPEndPoint(ip, p) : new DnsEndPoint(host, p);
        return new QmpAddress(ep, null);
    }

    private static bool TrySplitTcp(string text, out string host, out string port)
    {
        host = port = "";
        if (!text.StartsWith("tcp:", StringComparison.Ordinal)) return false;
        string rest = text[4..];
        int colon = rest.LastIndexOf(':');
        if (colon <= 0)
            throw new QmpAddressException($"'{text}' is not a TCP address: write tcp:HOST:PORT, e.g. tcp:127.0.0.1:4444");
        host = rest[..colon].Trim('[', ']');
        port = rest[(colon + 1)..];
        return true;
    }

    private static int ParsePort(string text, string port, bool allowZero)
    {
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p > 65535 || (p == 0 && !allowZero))
            throw new QmpAddressException($"'{text}': '{port}' is not a TCP port ({(allowZero ? 0 : 1)}..65535)");
        return p;
    }

    private static QmpAddress Unix(string text)
    {
        string path = text.StartsWith("unix:", StringComparison.Ordinal) ? text[5..] : text;
        if (path.Length == 0) throw new QmpAddressException("the QMP socket path is empty: give a path or tcp:HOST:PORT");
        if (Encoding.UTF8.GetByteCount(path) > MaxUnixPathBytes)
            throw new QmpAddressException($"the QMP socket path '{path}' is longer than {MaxUnixPathBytes} bytes, the UNIX socket limit: use a shorter path");
        return new QmpAddress(new UnixDomainSocketEndPoint(path), path);
    }
}
