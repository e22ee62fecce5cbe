using System.Globalization;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Core;

namespace SharpVmm.Machine.Config;

/// <summary>A raw binary to load at a guest-physical address and enter in a chosen CPU mode (<c>--flat FILE@ADDR</c>).</summary>
public sealed record FlatImageSpec(string Path, ulong Address, EntryMode Mode)
{
    /// <summary>Parses <c>FILE@ADDR</c>, ADDR in hex (0x...) or decimal; the last '@' splits, so paths may contain '@'.</summary>
    public static FlatImageSpec Parse(string text, EntryMode mode)
    {
        int at = text.LastIndexOf('@');
        if (at <= 0 || at == text.Length - 1)
            throw new ConfigurationException($"--flat '{text}' must be FILE@ADDR, e.g. hello.bin@0x1000");
        string addr = text[(at + 1)..];
        bool ok = addr.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(addr.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong a)
            : ulong.TryParse(addr, NumberStyles.None, CultureInfo.InvariantCulture, out a);
        if (!ok) throw new ConfigurationException($"--flat address '{addr}' is not a number (write 0x1000 or 4096)");
        return new FlatImageSpec(text[..at], a, mode);
    }
}
