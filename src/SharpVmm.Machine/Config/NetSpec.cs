using SharpVmm.Core;
using SharpVmm.Devices.Net;
using SharpVmm.Devices.Net.Tap;

namespace SharpVmm.Machine.Config;

/// <summary>Where a virtio-net NIC's frames go.</summary>
public enum NetBackendKind
{
    /// <summary>A host TAP interface (needs CAP_NET_ADMIN or a tap made for the user beforehand).</summary>
    Tap,
    /// <summary>User-mode networking through libslirp: no privilege, the gateway reaches the host's loopback.</summary>
    User,
}

/// <summary>A virtio-net NIC: <c>--net tap,ifname=NAME[,mac=..]</c> or <c>--net user[,mac=..]</c>.</summary>
public sealed record NetSpec(NetBackendKind Kind, string? IfName = null, MacAddress? Mac = null)
{
    private const string Usage = "use tap,ifname=NAME[,mac=52:54:00:xx:xx:xx] or user[,mac=52:54:00:xx:xx:xx]";

    public static NetSpec Parse(string text)
    {
        var list = OptionList.WithHead(text);
        var kind = list.Head switch
        {
            "tap" => NetBackendKind.Tap,
            "user" => NetBackendKind.User,
            "" => throw new ConfigurationException($"--net '{text}' needs a backend first: {Usage}"),
            _ => throw new ConfigurationException($"--net backend '{list.Head}' is not known: {Usage}"),
        };
        string? ifName = null;
        MacAddress? mac = null;
        foreach (var (key, value, hasValue, p) in list.Items)
        {
            switch (key)
            {
                case "mac" when hasValue && mac is null:
                    mac = MacAddress.Parse(value);
                    break;
                case "ifname" when kind == NetBackendKind.Tap && hasValue && ifName is null:
                    try { TapBackend.ValidateName(value); }
                    catch (NetBackendException e) { throw new ConfigurationException($"--net {text}: {e.Message}"); }
                    ifName = value;
                    break;
                case "ifname" when kind == NetBackendKind.User:
                    throw new ConfigurationException($"--net {text}: ifname= is for tap; user networking needs no host interface");
                default:
                    throw new ConfigurationException($"--net option '{p}' is not understood (or given twice): {Usage}");
            }
        }
        if (kind == NetBackendKind.Tap && ifName is null)
            throw new ConfigurationException($"--net {text}: a tap needs its interface name: tap,ifname=NAME");
        return new NetSpec(kind, ifName, mac);
    }

    /// <summary>Two NICs may not share a MAC address (given or default) or a tap interface.</summary>
    public static void ValidateAll(IReadOnlyList<NetSpec> nets)
    {
        var macs = new HashSet<MacAddress>();
        var taps = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < nets.Count; i++)
        {
            var mac = nets[i].Mac ?? DefaultMac(i);
            if (!macs.Add(mac)) throw new ConfigurationException($"--net: two NICs have the MAC address {mac}: give each its own mac=");
            if (nets[i].IfName is { } name && !name.Contains('%') && !taps.Add(name))
                throw new ConfigurationException($"--net: two NICs use tap {name}: give each its own ifname=");
        }
    }

    /// <summary>The MAC of the <paramref name="index"/>-th NIC when none is given: QEMU's 52:54:00:12:34:56, counting up.</summary>
    public static MacAddress DefaultMac(int index)
    {
        var b = MacAddress.Default.ToArray();
        b[5] = (byte)(b[5] + index);
        return MacAddress.FromBytes(b);
    }

    public override string ToString()
        => (Kind == NetBackendKind.Tap ? "tap,ifname=" + IfName : "user") + (Mac is { } m ? ",mac=" + m : "");
}
