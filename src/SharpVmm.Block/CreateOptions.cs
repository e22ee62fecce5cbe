namespace SharpVmm.Block;

/// <summary>qemu-img create's -o options for qcow2 (and preallocation for raw).</summary>
public sealed record CreateOptions
{
    public int ClusterSize { get; init; } = 65536;
    /// <summary>"0.10" (version 2) or "1.1" (version 3).</summary>
    public string Compat { get; init; } = "1.1";
    public bool LazyRefcounts { get; init; }
    public int RefcountBits { get; init; } = 16;
    public Preallocation Preallocation { get; init; } = Preallocation.Off;
    public string? BackingFile { get; init; }
    public string? BackingFormat { get; init; }
    /// <summary>"zlib" or "zstd".</summary>
    public string CompressionType { get; init; } = "zlib";
    public bool ExtendedL2 { get; init; }
    /// <summary>Open the created image with <see cref="ImageOpenOptions.IgnoreFlushes"/>.</summary>
    public bool IgnoreFlushes { get; init; }
}
