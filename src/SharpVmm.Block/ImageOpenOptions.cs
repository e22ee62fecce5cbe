namespace SharpVmm.Block;

public sealed record ImageOpenOptions
{
    /// <summary>"raw", "qcow2" or null to probe the file.</summary>
    public string? Format { get; init; }
    public bool ReadOnly { get; init; }
    /// <summary>Open the backing chain (false: unallocated ranges read as zero, as qemu-img's -U/rebase -u need).</summary>
    public bool OpenBacking { get; init; } = true;
    /// <summary>Upper bound for each qcow2 image's L2 cache; the default covers a 512 GiB disk with 64 KiB clusters.</summary>
    public int L2CacheBytes { get; init; } = 64 << 20;
    /// <summary>Opened for check -r: the corrupt and dirty bits do not block the open.</summary>
    internal bool Repairing { get; init; }
    /// <summary>qemu's cache=unsafe: flushes return at once. For throw-away outputs (convert) that are redone after a crash.</summary>
    public bool IgnoreFlushes { get; init; }
    /// <summary>qemu-img's -U/--force-share: read the image (and its chain) even while another program writes it. Read-only opens only.</summary>
    public bool ForceShare { get; init; }
    public int MaxChainDepth { get; init; } = 64;
}
