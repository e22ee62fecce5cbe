using System.Globalization;
using System.Security.Cryptography;
using SharpVmm.Core;

namespace SharpVmm.Devices.Net;

/// <summary>A 48-bit Ethernet address, written as six hex pairs separated by colons (52:54:00:12:34:56).</summary>
public readonly record struct MacAddress
{
    private readonly ulong _value; // the six bytes in transmission order, first byte most significant

    private MacAddress(ulong value) => _value = value & 0xFFFF_FFFF_FFFFUL;

    /// <summary>The address QEMU gives its first NIC by default; we do the same so guests see a familiar OUI.</summary>
    public static MacAddress Default { get; } = new(0x5254_0012_3456UL);

    public static MacAddress FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != 6) throw new ArgumentException("a MAC address is 6 bytes", nameof(bytes));
        ulong v = 0;
        foreach (byte b in bytes) v = v << 8 | b;
        return new MacAddress(v);
    }

    /// <summary>A random locally administered unicast address in QEMU's 52:54:00 range, for the second NIC onwards.</summary>
    public static MacAddress Random()
    {
        Span<byte> b = stackalloc byte[6];
        RandomNumberGenerator.Fill(b[3..]);
        b[0] = 0x52; b[1] = 0x54; b[2] = 0x00;
        return FromBytes(b);
    }

    /// <summary>Parses <c>xx:xx:xx:xx:xx:xx</c>; refuses multicast addresses, which a NIC cannot own.</summary>
    public static MacAddress Parse(string text)
    {
        var parts = text.Split(':');
        Span<byte> b = stackalloc byte[6];
        bool ok = parts.Length == 6;
        for (int i = 0; ok && i < 6; i++)
            ok = parts[i].Length == 2 && byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out b[i]);
        if (!ok) throw new ConfigurationException($"'{text}' is not a MAC address: write six hex pairs, e.g. 52:54:00:12:34:56");
        if ((b[0] & 1) != 0) throw new ConfigurationException($"MAC address {text} is a multicast address: the first byte must be even (e.g. 52:54:00:12:34:56)");
        return FromBytes(b);
    }

    public void CopyTo(Span<byte> destination)
    {
        for (int i = 0; i < 6; i++) destination[i] = (byte)(_value >> (40 - 8 * i));
    }

    public byte[] ToArray()
    {
        var b = new byte[6];
        CopyTo(b);
        return b;
    }

    public override string ToString()
    {
        Span<byte> b = stackalloc byte[6];
        CopyTo(b);
        return string.Create(CultureInfo.InvariantCulture, $"{b[0]:x2}:{b[1]:x2}:{b[2]:x2}:{b[3]:x2}:{b[4]:x2}:{b[5]:x2}");
    }
}
