using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Block;

/// <summary>Helpers shared by the formats: range checks and whole-buffer file I/O.</summary>
internal static class ImageFile
{
    public static void CheckRange(IBlockImage img, long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > img.Size || length > img.Size - offset)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"request [{offset}, +{length}) is outside the {img.Size}-byte image '{img.Path}'");
    }

    public static void CheckWritable(IBlockImage img)
    {
        if (img.IsReadOnly) throw new BlockImageException($"'{img.Path}' is open read-only");
    }

    /// <summary>Reads the whole buffer; bytes past the end of the file read as zeroes.</summary>
    public static void ReadFully(SafeFileHandle fh, long offset, Span<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var n = RandomAccess.Read(fh, buffer, offset);
            if (n <= 0) { buffer.Clear(); return; }
            buffer = buffer[n..];
            offset += n;
        }
    }

    /// <summary>Reads the whole buffer or fails: metadata that ends early is a malformed image.</summary>
    public static void ReadExactly(SafeFileHandle fh, long offset, Span<byte> buffer, string path, string what)
    {
        while (buffer.Length > 0)
        {
            var n = RandomAccess.Read(fh, buffer, offset);
            if (n <= 0)
                throw new ImageCorruptException($"'{path}': the {what} at offset {offset} lies past the end of the file; the image is truncated or corrupt");
            buffer = buffer[n..];
            offset += n;
        }
    }

    private static readonly byte[] Zeroes = new byte[1 << 20];

    public static void WriteZeroes(SafeFileHandle fh, long offset, long length)
    {
        while (length > 0)
        {
            var n = (int)Math.Min(length, Zeroes.Length);
            RandomAccess.Write(fh, Zeroes.AsSpan(0, n), offset);
            offset += n;
            length -= n;
        }
    }

    public static void Preallocate(SafeFileHandle fh, long offset, long length, Preallocation mode)
    {
        if (length <= 0) return;
        switch (mode)
        {
            case Preallocation.Falloc:
                if (!FileSyscalls.Preallocate(fh, offset, length)) WriteZeroes(fh, offset, length);
                break;
            case Preallocation.Full:
                WriteZeroes(fh, offset, length);
                break;
        }
    }

    /// <summary>
    /// Allocates the file blocks for a range about to be written in full (fallocate), where the filesystem supports it.
    /// Measured on ext4: the write that follows then skips the per-page delayed-allocation bookkeeping, which costs more
    /// CPU than the one fallocate call. Only for whole ranges the caller writes next, so no more space is allocated than
    /// the write would allocate anyway. A filesystem that cannot do it leaves the write to allocate as usual.
    /// </summary>
    public static void Reserve(SafeFileHandle fh, long offset, long length)
    {
        if (length >= MinReserve) FileSyscalls.Preallocate(fh, offset, length);
    }

    // Below this a fallocate call costs more than the bookkeeping it saves.
    private const long MinReserve = 64 << 10;

    public static byte[] Rent(int size) => ArrayPool<byte>.Shared.Rent(size);
    public static void Return(byte[] buffer) => ArrayPool<byte>.Shared.Return(buffer);
}
