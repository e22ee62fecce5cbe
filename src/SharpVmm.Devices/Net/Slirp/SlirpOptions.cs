using System.Net;

namespace SharpVmm.Devices.Net.Slirp;

/// <summary>The user-mode network's addresses: QEMU's defaults, which guests and users know.</summary>
public sealed record SlirpOptions
{
    public IPAddress Network { get; init; } = IPAddress.Parse("10.0.2.0");
    public IPAddress Netmask { get; init; } = IPAddress.Parse("255.255.255.0");
    /// <summary>The gateway; connections to it reach the host's loopback (127.0.0.1).</summary>
    public IPAddress Host { get; init; } = IPAddress.Parse("10.0.2.2");
    /// <summary>The first address the built-in DHCP server hands out.</summary>
    public IPAddress DhcpStart { get; init; } = IPAddress.Parse("10.0.2.15");
    /// <summary>The built-in DNS forwarder, which asks the host's resolver.</summary>
    public IPAddress Dns { get; init; } = IPAddress.Parse("10.0.2.3");
    public bool Ipv6 { get; init; } = true;
    public IPAddress Prefix6 { get; init; } = IPAddress.Parse("fec0::");
    public byte PrefixLength6 { get; init; } = 64;
    public IPAddress Host6 { get; init; } = IPAddress.Parse("fec0::2");
    public IPAddress Dns6 { get; init; } = IPAddress.Parse("fec0::3");
    /// <summary>Frames from the guest waiting for the slirp thread; beyond this they are dropped.</summary>
    public int MaxQueuedFrames { get; init; } = 1024;
}
