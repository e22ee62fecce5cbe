using System.Globalization;
using SharpVmm.Core;

namespace SharpVmm.Machine.Config;

/// <summary>Memory sizes as QEMU users write them: <c>256M</c>, <c>1G</c>, <c>512K</c>, a bare number meaning MiB.</summary>
public static class SizeParser
{
    public static ulong Parse(string text, string what = "--memory")
    {
        string s = text.Trim();
        if (s.Length == 0) throw Bad(text, what);
        int shift = 20;
        char last = char.ToUpperInvariant(s[^1]);
        if (s.EndsWith("iB", StringComparison.OrdinalIgnoreCase) || (s.EndsWith('B') && s.Length > 1 && char.IsLetter(s[^2])))
        {
            s = s.EndsWith("iB", StringComparison.OrdinalIgnoreCase) ? s[..^2] : s[..^1];
            last = s.Length > 0 ? char.ToUpperInvariant(s[^1]) : ' ';
        }
        switch (last)
        {
            case 'K': shift = 10; s = s[..^1]; break;
            case 'M': shift = 20; s = s[..^1]; break;
            case 'G': shift = 30; s = s[..^1]; break;
            case 'T': shift = 40; s = s[..^1]; break;
            case 'B': throw Bad(text, what);
        }
        if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n == 0)
            throw Bad(text, what);
        if (n > (ulong.MaxValue >> shift)) throw new ConfigurationException($"{what} {text} is too large");
        return n << shift;
    }

    private static ConfigurationException Bad(string text, string what)
        => new($"{what} '{text}' is not a size: use a number with an optional K, M, G or T suffix (e.g. 256M; no suffix means MiB)");
}
