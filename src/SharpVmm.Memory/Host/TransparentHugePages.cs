namespace SharpVmm.Memory.Host;

/// <summary>The host's transparent huge page policy (/sys/kernel/mm/transparent_hugepage/enabled).</summary>
public static class TransparentHugePages
{
    public const string EnabledPath = "/sys/kernel/mm/transparent_hugepage/enabled";

    /// <summary>"always", "madvise" or "never"; null when the kernel has no THP (CONFIG_TRANSPARENT_HUGEPAGE off).</summary>
    public static string? Mode(string path = EnabledPath)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        int open = text.IndexOf('['), close = text.IndexOf(']');
        return open >= 0 && close > open ? text[(open + 1)..close] : text.Trim();
    }
}
