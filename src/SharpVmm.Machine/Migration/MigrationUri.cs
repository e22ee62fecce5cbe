using System.Globalization;
using System.Net;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// QEMU's migration URI as SharpVmm accepts it: <c>tcp:HOST:PORT</c> (IPv6 as <c>tcp:[::1]:PORT</c>), or
/// <c>fd:NAME</c>, a descriptor the monitor received with getfd or (a number) one inherited from whoever started us.
/// </summary>
public sealed record MigrationUri(string Host, int Port)
{
    /// <summary>For <c>fd:</c> URIs, the descriptor's name or number; null for TCP.</summary>
    public string? Fd { get; init; }

    public bool IsFd => Fd is not null;

    public static MigrationUri Parse(string text, bool listening)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.StartsWith("fd:", StringComparison.Ordinal))
        {
            string name = text[3..];
            if (name.Length == 0) throw new MigrationException($"migration URI '{text}' names no descriptor: use fd:NAME (a getfd name) or fd:N (an inherited descriptor)");
            return new MigrationUri("", 0) { Fd = name };
        }
        if (!text.StartsWith("tcp:", StringComparison.Ordinal))
            throw new MigrationException($"migration URI '{text}' is not supported: use tcp:HOST:PORT (e.g. tcp:127.0.0.1:4444) or fd:NAME");
        string rest = text[4..];
        int colon = rest.LastIndexOf(':');
        if (colon < 0) throw new MigrationException($"migration URI '{text}' has no port: use tcp:HOST:PORT");
        string host = rest[..colon].Trim('[', ']');
        if (host.Length == 0) host = listening ? "0.0.0.0" : throw new MigrationException($"migration URI '{text}' has no host: use tcp:HOST:PORT");
        if (!int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535 || (port == 0 && !listening))
            throw new MigrationException($"migration URI '{text}': '{rest[(colon + 1)..]}' is not a TCP port ({(listening ? 0 : 1)}..65535)");
        return new MigrationUri(host, port);
    }

    /// <summary>The descriptor number when <see cref="Fd"/> is a number (an inherited descriptor); null for a name.</summary>
    public int? FdNumber => Fd is { } f && int.TryParse(f, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : null;

    /// <summary>The address to listen on: a literal IP, or "localhost".</summary>
    public IPAddress ListenAddress()
    {
        if (Host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        if (IPAddress.TryParse(Host, out var ip)) return ip;
        throw new MigrationException($"cannot listen for an incoming migration on '{Host}': give an IP address (e.g. tcp:0.0.0.0:{Port} or tcp:127.0.0.1:{Port})");
    }

    public override string ToString() => Fd is { } fd ? $"fd:{fd}" : Host.Contains(':') ? $"tcp:[{Host}]:{Port}" : $"tcp:{Host}:{Port}";
}
