namespace SharpVmm.Boot.Initramfs;

/// <summary>The key=value strings of a kernel module's .modinfo section.</summary>
public sealed class ModInfo
{
    private readonly List<KeyValuePair<string, string>> _fields;

    public ModInfo(IEnumerable<KeyValuePair<string, string>> fields)
    {
        _fields = [.. fields];
    }

    public IReadOnlyList<KeyValuePair<string, string>> Fields => _fields;

    /// <summary>The module's own name (name=), or null when the module does not record it.</summary>
    public string? Name => Get("name");

    /// <summary>The modules this one needs loaded first (depends=, comma-separated; empty when none).</summary>
    public IReadOnlyList<string> Depends =>
        (Get("depends") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The first value of <paramref name="key"/>, or null.</summary>
    public string? Get(string key)
    {
        foreach (var f in _fields)
        {
            if (f.Key == key)
                return f.Value;
        }
        return null;
    }

    /// <summary>All values of <paramref name="key"/> (alias=, parm= ... repeat).</summary>
    public IEnumerable<string> GetAll(string key) => _fields.Where(f => f.Key == key).Select(f => f.Value);
}
