namespace SharpVmm.Memory;

/// <summary>How the host backs guest RAM. Anything asked for that the host refuses is an error, never ignored.</summary>
public sealed record GuestMemoryOptions
{
    /// <summary>Register RAM with KSM (MADV_MERGEABLE) so identical pages across guests are stored once.</summary>
    public bool Merge { get; init; }
    /// <summary>Ask for transparent huge pages (MADV_HUGEPAGE).</summary>
    public bool HugePages { get; init; }
    /// <summary>Touch every page up front (MAP_POPULATE) instead of on first guest access.</summary>
    public bool Prealloc { get; init; }
}
