namespace SharpVmm.Block;

/// <summary>
/// A disk image: a byte-addressed virtual disk of <see cref="Size"/> bytes. Every member is safe to call from several
/// threads at once (virtio-blk issues requests from several queues); requests that overlap see each other's data in
/// some order, as with a real disk.
/// </summary>
public interface IBlockImage : IDisposable
{
    string Path { get; }
    /// <summary>"raw" or "qcow2": the name qemu-img uses.</summary>
    string FormatName { get; }
    long Size { get; }
    bool IsReadOnly { get; }
    /// <summary>The image this one reads unallocated ranges from, or null.</summary>
    IBlockImage? Backing { get; }

    void Read(long offset, Span<byte> buffer);
    void Write(long offset, ReadOnlySpan<byte> data);
    /// <summary>Makes the range read as zeroes; with <paramref name="unmap"/> the space may be released.</summary>
    void WriteZeroes(long offset, long length, bool unmap);
    /// <summary>Releases the range's space where the format allows; afterwards it reads as zeroes or as the backing file.</summary>
    void Discard(long offset, long length);
    /// <summary>Everything written before returns is on stable storage when this returns.</summary>
    void Flush();
    /// <summary>The extent that starts at <paramref name="offset"/>, at most <paramref name="length"/> bytes long.</summary>
    BlockStatus GetStatus(long offset, long length);
    void Resize(long newSize, bool allowShrink);
    /// <summary>Bytes the image's file(s) take on the host filesystem.</summary>
    long ActualSize { get; }
}
