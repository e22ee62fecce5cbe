using System.Globalization;

namespace SharpVmm.Cli.Img;

/// <summary>qemu-img sizes: bytes, or a number with k/K, M, G, T, P, E (powers of 1024), optionally fractional.</summary>
internal static class SizeParser
{
    public static long Parse(string text)
    {
        var s = text.Trim();
        if (s.Length == 0) throw new FormatException("empty size");
        long mult = 1;
        var last = char.ToUpperInvariant(s[^1]);
        if (last == 'B' && s.Length > 1 && char.IsLetter(s[^2])) { s = s[..^1]; last = char.ToUpperInvariant(s[^1]); }
        var shift = last switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, 'P' => 50, 'E' => 60, 'B' => 0, _ => -1 };
        if (shift >= 0) { s = s[..^1]; mult = 1L << shift; }
        if (!double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v) || v < 0)
            throw new FormatException($"invalid size '{text}': use a number of bytes or a suffix k, M, G, T");
        var r = v * mult;
        if (r > long.MaxValue / 2) throw new FormatException($"size '{text}' is too large");
        return (long)r;
    }

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
