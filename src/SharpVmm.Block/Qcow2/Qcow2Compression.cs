using System.IO.Compression;
using System.Runtime.InteropServices;

namespace SharpVmm.Block.Qcow2;

/// <summary>
/// Compressed-cluster codecs. qcow2's "zlib" type is a raw deflate stream with a 4 KiB window (windowBits -12), which
/// .NET's DeflateStream cannot produce (it always uses 32 KiB, which qemu would reject), so compression calls the
/// system zlib; zstd is libzstd.so.1. Both libraries are part of every Debian install that has qemu-utils.
/// </summary>
internal static unsafe partial class Qcow2Compression
{
    [StructLayout(LayoutKind.Sequential)]
    private struct ZStream
    {
        public byte* NextIn;
        public uint AvailIn;
        public nuint TotalIn;
        public byte* NextOut;
        public uint AvailOut;
        public nuint TotalOut;
        public nint Msg, State, ZAlloc, ZFree, Opaque;
        public int DataType;
        public nuint Adler, Reserved;
    }

    [LibraryImport("libz.so.1", EntryPoint = "deflateInit2_", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int DeflateInit2(ZStream* strm, int level, int method, int windowBits, int memLevel, int strategy, string version, int streamSize);
    [LibraryImport("libz.so.1", EntryPoint = "deflate")]
    private static partial int Deflate(ZStream* strm, int flush);
    [LibraryImport("libz.so.1", EntryPoint = "deflateEnd")]
    private static partial int DeflateEnd(ZStream* strm);

    [LibraryImport("libzstd.so.1", EntryPoint = "ZSTD_compress")]
    private static partial nuint ZstdCompress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);
    [LibraryImport("libzstd.so.1", EntryPoint = "ZSTD_decompress")]
    private static partial nuint ZstdDecompress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize);
    [LibraryImport("libzstd.so.1", EntryPoint = "ZSTD_findFrameCompressedSize")]
    private static partial nuint ZstdFrameSize(byte* src, nuint srcSize);
    [LibraryImport("libzstd.so.1", EntryPoint = "ZSTD_isError")]
    private static partial uint ZstdIsError(nuint code);

    /// <summary>Compresses one cluster; returns the compressed length, or -1 when it does not shrink enough to pay.</summary>
    public static int Compress(ReadOnlySpan<byte> src, Span<byte> dst, bool zstd)
    {
        try
        {
            return zstd ? CompressZstd(src, dst) : CompressDeflate(src, dst);
        }
        catch (DllNotFoundException e)
        {
            throw new BlockImageException($"compression needs {(zstd ? "libzstd.so.1 (apt install libzstd1)" : "libz.so.1 (apt install zlib1g)")}: {e.Message}");
        }
    }

    private static int CompressDeflate(ReadOnlySpan<byte> src, Span<byte> dst)
    {
        ZStream z = default;
        if (DeflateInit2(&z, 6, 8, -12, 9, 0, "1.2.11", sizeof(ZStream)) != 0)
            throw new BlockImageException("zlib deflateInit2 failed");
        try
        {
            fixed (byte* s = src)
            fixed (byte* d = dst)
            {
                z.NextIn = s;
                z.AvailIn = (uint)src.Length;
                z.NextOut = d;
                z.AvailOut = (uint)dst.Length;
                var rc = Deflate(&z, 4 /* Z_FINISH */);
                return rc == 1 /* Z_STREAM_END */ ? (int)z.TotalOut : -1;
            }
        }
        finally { DeflateEnd(&z); }
    }

    private static int CompressZstd(ReadOnlySpan<byte> src, Span<byte> dst)
    {
        fixed (byte* s = src)
        fixed (byte* d = dst)
        {
            var n = ZstdCompress(d, (nuint)dst.Length, s, (nuint)src.Length, 3);
            return ZstdIsError(n) != 0 ? -1 : (int)n;
        }
    }

    /// <summary>Decompresses exactly dst.Length bytes; trailing bytes after the stream (sector padding) are ignored.</summary>
    public static void Decompress(ReadOnlySpan<byte> src, Span<byte> dst, bool zstd, string path)
    {
        if (zstd)
        {
            try
            {
                fixed (byte* s = src)
                fixed (byte* d = dst)
                {
                    var frame = ZstdFrameSize(s, (nuint)src.Length);
                    if (ZstdIsError(frame) == 0)
                    {
                        var n = ZstdDecompress(d, (nuint)dst.Length, s, frame);
                        if (ZstdIsError(n) == 0 && (int)n == dst.Length) return;
                    }
                }
            }
            catch (DllNotFoundException e)
            {
                throw new BlockImageException($"'{path}' uses zstd compression, which needs libzstd.so.1 (apt install libzstd1): {e.Message}");
            }
            throw new ImageCorruptException($"'{path}': a zstd-compressed cluster does not decompress to a full cluster; the image is corrupt");
        }
        fixed (byte* s = src)
        {
            using var ms = new UnmanagedMemoryStream(s, src.Length);
            using var ds = new DeflateStream(ms, CompressionMode.Decompress);
            var total = 0;
            try
            {
                while (total < dst.Length)
                {
                    var n = ds.Read(dst[total..]);
                    if (n <= 0) break;
                    total += n;
                }
            }
            catch (InvalidDataException) { total = -1; }
            if (total != dst.Length)
                throw new ImageCorruptException($"'{path}': a deflate-compressed cluster does not decompress to a full cluster; the image is corrupt");
        }
    }
}
