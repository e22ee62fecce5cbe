using System.Globalization;

namespace SharpVmm.Memory.Host;

/// <summary>
/// Where one process's memory goes, from /proc: resident (RSS), proportional (PSS: a page shared by N mappings counts
/// 1/N, so KSM merging lowers it while RSS stays), and pages merged by KSM. Linux-only; every field is in bytes.
/// </summary>
public sealed record ProcessMemory(long ResidentBytes, long ProportionalBytes, long AnonymousBytes, long KsmMergingPages, long KsmZeroPages, long KsmProcessProfit)
{
    public const int PageSize = 4096;

    /// <summary>Bytes the process maps that KSM merged (ksm_merging_pages × 4 KiB).</summary>
    public long KsmMergedBytes => KsmMergingPages * PageSize;

    /// <summary>Reads the figures of <paramref name="pid"/> ("self" for this process).</summary>
    public static ProcessMemory Read(string pid = "self")
    {
        string dir = $"/proc/{pid}";
        long rss = 0, pss = 0, anon = 0;
        foreach (var line in ReadLines(Path.Combine(dir, "smaps_rollup")))
        {
            if (line.StartsWith("Rss:", StringComparison.Ordinal)) rss = KiB(line);
            else if (line.StartsWith("Pss:", StringComparison.Ordinal)) pss = KiB(line);
            else if (line.StartsWith("Anonymous:", StringComparison.Ordinal)) anon = KiB(line);
        }
        long merging = 0, zero = 0, profit = 0;
        string stat = Path.Combine(dir, "ksm_stat");
        if (File.Exists(stat))
        {
            // Linux 6.1+: ksm_rmap_items, ksm_zero_pages (6.10+), ksm_merging_pages (6.8+), ksm_process_profit.
            foreach (var line in ReadLines(stat))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length != 2 || !long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v)) continue;
                switch (parts[0])
                {
                    case "ksm_merging_pages": merging = v; break;
                    case "ksm_zero_pages": zero = v; break;
                    case "ksm_process_profit": profit = v; break;
                }
            }
        }
        string mergingPath = Path.Combine(dir, "ksm_merging_pages");
        if (merging == 0 && File.Exists(mergingPath))
            merging = long.Parse(File.ReadAllText(mergingPath).Trim(), CultureInfo.InvariantCulture);
        return new ProcessMemory(rss, pss, anon, merging, zero, profit);
    }

    /// <summary>Resident bytes of the anonymous mappings of exactly <paramref name="size"/> bytes (how guest RAM is found from outside).</summary>
    public static long ResidentOfMappingsSized(string pid, ulong size, ulong slack = 0)
    {
        long total = 0;
        bool inMatch = false;
        foreach (var line in ReadLines($"/proc/{pid}/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && IsHex(line.AsSpan(0, dash)))
            {
                ulong start = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                ulong end = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                bool anonymous = fields.Length < 6; // no path (not even [heap]/[stack])
                inMatch = anonymous && end - start >= size && end - start <= size + slack;
            }
            else if (inMatch && line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                total += KiB(line);
            }
        }
        return total;
    }

    private static bool IsHex(ReadOnlySpan<char> s)
    {
        foreach (char c in s) if (!char.IsAsciiHexDigit(c)) return false;
        return s.Length > 0;
    }

    private static IEnumerable<string> ReadLines(string path)
    {
        try { return File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private static long KiB(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length >= 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long v) ? v * 1024 : 0;
    }
}
