using System.Buffers.Binary;

namespace SharpVmm.Block.Qcow2;

/// <summary>
/// Writes a minimal valid qcow2 file (header, one-cluster refcount table, one refcount block, empty L1) and then grows
/// it to the requested size through the image's own resize path, so creation and growth share one tested code path.
/// </summary>
internal static class Qcow2Creator
{
    public static IBlockImage Create(string path, long size, CreateOptions o)
    {
        var cs = o.ClusterSize;
        if (cs < 512 || cs > (2 << 20) || (cs & (cs - 1)) != 0)
            throw new BlockImageException($"cluster size {cs} is invalid: it must be a power of two between 512 and 2M");
        var version = o.Compat switch
        {
            "0.10" or "v2" => 2,
            "1.1" or "v3" => 3,
            _ => throw new BlockImageException($"compat '{o.Compat}' is invalid: use 0.10 or 1.1"),
        };
        var rb = o.RefcountBits;
        if (rb < 1 || rb > 64 || (rb & (rb - 1)) != 0)
            throw new BlockImageException($"refcount_bits {rb} is invalid: it must be a power of two from 1 to 64");
        if (version == 2 && rb != 16) throw new BlockImageException("compat=0.10 images only support refcount_bits=16");
        if (version == 2 && o.LazyRefcounts) throw new BlockImageException("lazy refcounts need compat=1.1");
        if (o.CompressionType is not ("zlib" or "zstd")) throw new BlockImageException($"compression type '{o.CompressionType}' is invalid: use zlib or zstd");
        if (o.CompressionType == "zstd" && version == 2) throw new BlockImageException("zstd compression needs compat=1.1");
        if (o.ExtendedL2) throw new BlockImageException("creating images with extended_l2 is not supported (they can be read)");
        if (o.BackingFormat != null && o.BackingFile == null) throw new BlockImageException("a backing format was given without a backing file");
        var cb = System.Numerics.BitOperations.Log2((uint)cs);
        var h = new Qcow2Header
        {
            Version = version,
            ClusterBits = cb,
            Size = 0,
            RefcountTableOffset = cs,
            RefcountTableClusters = 1,
            RefcountOrder = System.Numerics.BitOperations.Log2((uint)rb),
            Compatible = o.LazyRefcounts ? Qcow2Header.CompatLazyRefcounts : 0,
            BackingFile = o.BackingFile,
            BackingFormat = o.BackingFile != null ? o.BackingFormat : null,
        };
        if (o.CompressionType == "zstd")
        {
            h.CompressionType = 1;
            h.Incompatible |= Qcow2Header.IncompatCompression;
        }
        var file = new byte[3 * cs];
        h.Serialize().CopyTo(file, 0);
        BinaryPrimitives.WriteUInt64BigEndian(file.AsSpan(cs), (ulong)(2 * cs));
        // Refcount 1 for clusters 0..2, written with whatever width the image uses.
        var block = file.AsSpan(2 * cs);
        for (var c = 0; c < 3; c++) SetRef(block, c, rb);
        try
        {
            using var fh = ImageFactory.OpenForCreate(path);
            RandomAccess.Write(fh, file, 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not BlockImageException)
        {
            throw new BlockImageException($"cannot create '{path}': {e.Message}", e);
        }
        var img = ImageFactory.OpenQcow2(path, new ImageOpenOptions { Format = "qcow2", OpenBacking = false, IgnoreFlushes = o.IgnoreFlushes });
        try
        {
            img.Resize(size, false);
            if (o.Preallocation != Preallocation.Off) img.Preallocate(o.Preallocation);
        }
        finally { img.Dispose(); }
        return ImageFactory.Open(path, new ImageOpenOptions { Format = "qcow2", IgnoreFlushes = o.IgnoreFlushes });
    }

    private static void SetRef(Span<byte> block, int i, int bits)
    {
        switch (bits)
        {
            case 8: block[i] = 1; break;
            case 16: BinaryPrimitives.WriteUInt16BigEndian(block[(i * 2)..], 1); break;
            case 32: BinaryPrimitives.WriteUInt32BigEndian(block[(i * 4)..], 1); break;
            case 64: BinaryPrimitives.WriteUInt64BigEndian(block[(i * 8)..], 1); break;
            default: block[i * bits >> 3] |= (byte)(1 << (i * bits & 7)); break;
        }
    }
}
