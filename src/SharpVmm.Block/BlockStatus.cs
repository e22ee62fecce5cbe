namespace SharpVmm.Block;

[Flags]
public enum BlockStatusFlags
{
    None = 0,
    /// <summary>Some layer of the chain stores this range (qemu-img map's "present").</summary>
    Present = 1,
    /// <summary>The range reads as zeroes.</summary>
    Zero = 2,
    /// <summary>The range is backed by stored data (qemu-img map's "data").</summary>
    Data = 4,
    /// <summary><see cref="BlockStatus.HostOffset"/> is the range's offset in <see cref="BlockStatus.File"/>.</summary>
    OffsetValid = 8,
    Compressed = 16,
}

/// <summary>One extent of an image's allocation map, as qemu-img map reports it.</summary>
public readonly record struct BlockStatus(long Offset, long Length, BlockStatusFlags Flags, long HostOffset, int Depth, string File)
{
    public bool Has(BlockStatusFlags f) => (Flags & f) == f;
}
