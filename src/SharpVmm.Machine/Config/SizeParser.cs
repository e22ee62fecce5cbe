using System.Globalization;
using SharpVmm.Core;

namespace SharpVmm.Machine.Config;

/// <summary>
/// Sizes as QEMU and qemu-img users write them: a number with an optional suffix K, M, G, T, P or E (powers of 1024,
/// either case, optionally followed by B or iB: <c>64MiB</c>, <c>64MB</c>), or B for bytes. A bare number is in the
/// caller's default unit: MiB for guest RAM (<c>--memory 256</c>), bytes for images (<c>img create x.qcow2 1048576</c>).
/// </summary>
public static class SizeParser
{
    /// <summary>The one grammar. Fractions (<c>1.5G</c>) only where <paramref name="allowFraction"/>; the result is
    /// rounded down to a byte. False when the text is not a size; <paramref name="tooLarge"/> when it is one past
    /// <paramref name="max"/>.</summary>
    public static bool TryParse(string text, int defaultShift, bool allowFraction, ulong max, out ulong bytes, out bool tooLarge)
    {
        bytes = 0;
        tooLarge = false;
        string s = text.Trim();
        if (s.EndsWith("iB", StringComparison.OrdinalIgnoreCase) && s.Length > 2 && char.IsLetter(s[^3])) s = s[..^2];
        else if (s.EndsWith('B') || s.EndsWith('b'))
        {
            if (s.Length > 1 && char.IsLetter(s[^2])) s = s[..^1];
            else { s = s[..^1]; defaultShift = 0; }
        }
        int shift = s.Length == 0 ? -1 : char.ToUpperInvariant(s[^1]) switch
        {
            'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, 'P' => 50, 'E' => 60, _ => -1,
        };
        if (shift >= 0) s = s[..^1];
        else shift = defaultShift;
        if (s.Length == 0) return false;
        if (allowFraction)
        {
            if (!double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) || v < 0) return false;
            double r = v * (1UL << shift);
            if (r > max) { tooLarge = true; return false; }
            bytes = (ulong)r;
            return true;
        }
        if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
        {
            tooLarge = s.All(char.IsAsciiDigit); // digits only: past ulong
            return false;
        }
        if (n > (max >> shift)) { tooLarge = true; return false; }
        bytes = n << shift;
        return true;
    }

    /// <summary>Guest RAM and other machine sizes: whole numbers, more than zero, a bare number meaning MiB.</summary>
    public static ulong Parse(string text, string what = "--memory")
    {
        if (TryParse(text, 20, allowFraction: false, ulong.MaxValue, out ulong bytes, out bool tooLarge) && bytes != 0) return bytes;
        if (tooLarge) throw new ConfigurationException($"{what} {text} is too large");
        throw new ConfigurationException($"{what} '{text}' is not a size: use a number with an optional K, M, G or T suffix (e.g. 256M; no suffix means MiB)");
    }

    /// <summary>qemu-img sizes: a bare number is bytes, fractions allowed (<c>1.5G</c>), zero allowed.</summary>
    public static long ParseBytes(string text)
    {
        if (text.Trim().Length == 0) throw new FormatException("empty size");
        if (TryParse(text, 0, allowFraction: true, long.MaxValue / 2, out ulong bytes, out bool tooLarge)) return (long)bytes;
        if (tooLarge) throw new FormatException($"size '{text}' is too large");
        throw new FormatException($"invalid size '{text}': use a number of bytes or a suffix k, M, G, T");
    }

    /// <summary>A size for people: <c>1.5 GiB</c>, <c>512 B</c>, as qemu-img info prints it.</summary>
    public static string Human(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double v = bytes;
        var u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        if (u == 0) return $"{bytes} B";
        var s = v.ToString(v >= 100 ? "0" : v >= 10 ? "0.#" : "0.##", CultureInfo.InvariantCulture);
        return $"{s} {units[u]}";
    }
}
