using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Block.Raw;

/// <summary>A raw image: the virtual disk's bytes, one for one, in a host file. pread/pwrite make it thread-safe.</summary>
public sealed class RawImage : IBlockImage
{
    private readonly SafeFileHandle _file;
    private long _size;

    private readonly bool _ignoreFlushes;

    private RawImage(string path, SafeFileHandle fh, bool readOnly, bool ignoreFlushes = false)
    {
        Path = path;
        _file = fh;
        IsReadOnly = readOnly;
        _ignoreFlushes = ignoreFlushes;
        _size = RandomAccess.GetLength(fh);
    }

    public static RawImage Open(string path, bool readOnly, bool ignoreFlushes = false, bool forceShare = false)
    {
        SafeFileHandle fh;
        try
        {
            fh = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BlockImageException($"cannot open '{path}': {e.Message}", e);
        }
        try
        {
            ImageLock.Acquire(fh, path, ImageFactory.AccessFor(readOnly, forceShare));
            return new RawImage(path, fh, readOnly, ignoreFlushes);
        }
        catch
        {
            fh.Dispose();
            throw;
        }
    }

    public static RawImage Create(string path, long size, Preallocation prealloc = Preallocation.Off, bool ignoreFlushes = false)
    {
        using (var fh = OpenForCreate(path))
        {
            RandomAccess.SetLength(fh, size);
            ImageFile.Preallocate(fh, 0, size, prealloc);
        }
        return Open(path, readOnly: false, ignoreFlushes);
    }

    private static SafeFileHandle OpenForCreate(string path)
    {
        try { return ImageFactory.OpenForCreate(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not BlockImageException)
        {
            throw new BlockImageException($"cannot create '{path}': {e.Message}", e);
        }
    }

    public string Path { get; }
    public string FormatName => "raw";
    public long Size => Volatile.Read(ref _size);
    public bool IsReadOnly { get; }
    public IBlockImage? Backing => null;
    public long ActualSize => FileSyscalls.AllocatedBytes(_file);

    public void Read(long offset, Span<byte> buffer)
    {
        ImageFile.CheckRange(this, offset, buffer.Length);
        ImageFile.ReadFully(_file, offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        ImageFile.CheckWritable(this);
        ImageFile.CheckRange(this, offset, data.Length);
        RandomAccess.Write(_file, data, offset);
    }

    /// <summary>Convert's write of a data run: its blocks are allocated in one fallocate call first (exactly the range written, so no more space than the write itself takes).</summary>
    internal void WriteFresh(long offset, ReadOnlySpan<byte> data)
    {
        ImageFile.CheckWritable(this);
        ImageFile.CheckRange(this, offset, data.Length);
        ImageFile.Reserve(_file, offset, data.Length);
        RandomAccess.Write(_file, data, offset);
    }

    public void WriteZeroes(long offset, long length, bool unmap)
    {
        ImageFile.CheckWritable(this);
        ImageFile.CheckRange(this, offset, length);
        if (unmap && FileSyscalls.PunchHole(_file, offset, length)) return;
        ImageFile.WriteZeroes(_file, offset, length);
    }

    public void Discard(long offset, long length)
    {
        ImageFile.CheckWritable(this);
        ImageFile.CheckRange(this, offset, length);
        if (!FileSyscalls.PunchHole(_file, offset, length)) ImageFile.WriteZeroes(_file, offset, length);
    }

    public void Flush()
    {
        if (!IsReadOnly && !_ignoreFlushes) FileSyscalls.DataSync(_file);
    }

    public BlockStatus GetStatus(long offset, long length)
    {
        ImageFile.CheckRange(this, offset, length);
        length = Math.Min(length, Size - offset);
        var data = FileSyscalls.SeekData(_file, offset);
        if (data == -1 || data == offset)
        {
            var hole = data < 0 ? -1 : FileSyscalls.SeekHole(_file, offset);
            var len = hole > offset ? Math.Min(length, hole - offset) : length;
            return new BlockStatus(offset, len, BlockStatusFlags.Present | BlockStatusFlags.Data | BlockStatusFlags.OffsetValid, offset, 0, Path);
        }
        // A hole reads as zeroes; -2 (ENXIO) means a hole up to EOF.
        var end = data > offset ? Math.Min(length, data - offset) : length;
        return new BlockStatus(offset, end, BlockStatusFlags.Present | BlockStatusFlags.Zero | BlockStatusFlags.OffsetValid, offset, 0, Path);
    }

    public void Resize(long newSize, bool allowShrink)
    {
        ImageFile.CheckWritable(this);
        if (newSize < Size && !allowShrink)
            throw new BlockImageException($"'{Path}': shrinking would lose data; pass --shrink to allow it");
        RandomAccess.SetLength(_file, newSize);
        Volatile.Write(ref _size, newSize);
    }

    public void Dispose() => _file.Dispose();
}
