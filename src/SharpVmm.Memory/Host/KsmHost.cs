using System.Globalization;

namespace SharpVmm.Memory.Host;

/// <summary>
/// The host's KSM daemon (Kernel Same-page Merging) through /sys/kernel/mm/ksm: its switch and its counters. Guest RAM
/// registered with MADV_MERGEABLE is only scanned while <c>run</c> is 1.
/// </summary>
public sealed class KsmHost(string directory = KsmHost.DefaultDirectory)
{
    public const string DefaultDirectory = "/sys/kernel/mm/ksm";

    /// <summary>The tunables an operator sets; saved and restored together by tests and benches.</summary>
    public static readonly string[] Tunables = ["run", "pages_to_scan", "sleep_millisecs", "merge_across_nodes", "use_zero_pages", "max_page_sharing"];

    public string Directory { get; } = directory;

    /// <summary>False when the kernel was built without CONFIG_KSM (no /sys/kernel/mm/ksm).</summary>
    public bool Available => File.Exists(Path.Combine(Directory, "run"));

    /// <summary>0 stopped (merged pages stay merged), 1 running, 2 stopped and every merged page unmerged.</summary>
    public int Run => (int)Read("run");

    /// <summary>Every numeric file in the directory (run, pages_shared, pages_sharing, pages_to_scan, ...), by name.</summary>
    public IReadOnlyDictionary<string, long> ReadAll()
    {
        RequireAvailable();
        var values = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory))
        {
            string text;
            try { text = File.ReadAllText(file).Trim(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; } // write-only or vanished
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
                values[Path.GetFileName(file)] = v;
        }
        return values;
    }

    public long Read(string name)
    {
        RequireAvailable();
        string path = Path.Combine(Directory, CheckName(name));
        try
        {
            return long.Parse(File.ReadAllText(path).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            throw new HostMemoryException($"cannot read {path}: {e.Message}", e);
        }
    }

    /// <summary>Writes one tunable; a refusal says why (not root, read-only sysfs in a container, a value out of range).</summary>
    public void Write(string name, long value)
    {
        RequireAvailable();
        string path = Path.Combine(Directory, CheckName(name));
        try
        {
            File.WriteAllText(path, value.ToString(CultureInfo.InvariantCulture));
        }
        catch (UnauthorizedAccessException e)
        {
            throw new HostMemoryException($"not permitted to write {path}: changing KSM needs root (CAP_SYS_ADMIN) on a writable /sys; "
                + "run as root, or ask the host's administrator", e);
        }
        catch (IOException e)
        {
            string m = e.Message;
            string hint =
                m.Contains("Read-only", StringComparison.OrdinalIgnoreCase) ? " (/sys is mounted read-only here, as in most containers: change KSM on the host itself)"
                : m.Contains("Invalid argument", StringComparison.OrdinalIgnoreCase) ? $" ({value} is not a value {name} accepts)"
                : m.Contains("busy", StringComparison.OrdinalIgnoreCase) ? " (the kernel refuses this change while pages are merged: unmerge first with run=2)"
                : "";
            throw new HostMemoryException($"cannot write {value} to {path}: {e.Message}{hint}", e);
        }
    }

    /// <summary>The tunables' current values, to hand back to <see cref="Restore"/>.</summary>
    public IReadOnlyDictionary<string, long> SaveTunables()
    {
        var all = ReadAll();
        var saved = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var t in Tunables)
            if (all.TryGetValue(t, out long v)) saved[t] = v;
        return saved;
    }

    /// <summary>Writes back every saved tunable that changed, run last (so the daemon restarts with the old settings); tries them all.</summary>
    public void Restore(IReadOnlyDictionary<string, long> saved)
    {
        var errors = new List<string>();
        foreach (var (name, value) in saved)
        {
            if (name == "run") continue;
            try { if (Read(name) != value) Write(name, value); }
            catch (HostMemoryException e) { errors.Add(e.Message); }
        }
        if (saved.TryGetValue("run", out long run))
        {
            try { if (Run != run) Write("run", run); }
            catch (HostMemoryException e) { errors.Add(e.Message); }
        }
        if (errors.Count > 0) throw new HostMemoryException("could not restore every KSM setting: " + string.Join("; ", errors));
    }

    private void RequireAvailable()
    {
        if (!Available)
            throw new HostMemoryException($"this host has no KSM ({Directory} is missing: the kernel was built without CONFIG_KSM)");
    }

    private static string CheckName(string name)
    {
        if (name.Length == 0 || name.Contains('/') || name.Contains(".."))
            throw new ArgumentException($"'{name}' is not a KSM setting", nameof(name));
        return name;
    }
}
