namespace SharpVmm.Block.Operations;

/// <summary>qemu-img compare: guest-visible contents; a size difference is fine if the extra part reads as zero.</summary>
public static class ImageCompare
{
    /// <summary>The first differing offset, or -1 when the images are identical.</summary>
    public static long FirstDifference(IBlockImage a, IBlockImage b, bool strict, Action<double>? progress = null)
    {
        if (strict && a.Size != b.Size) return Math.Min(a.Size, b.Size);
        const int chunk = 1 << 20;
        var ba = new byte[chunk];
        var bb = new byte[chunk];
        var common = Math.Min(a.Size, b.Size);
        for (long off = 0; off < common; off += chunk)
        {
            var n = (int)Math.Min(chunk, common - off);
            a.Read(off, ba.AsSpan(0, n));
            b.Read(off, bb.AsSpan(0, n));
            var m = ba.AsSpan(0, n).CommonPrefixLength(bb.AsSpan(0, n));
            if (m < n) return off + m;
            progress?.Invoke(100.0 * (off + n) / Math.Max(a.Size, b.Size));
        }
        var longer = a.Size > b.Size ? a : b;
        for (var off = common; off < longer.Size; off += chunk)
        {
            var n = (int)Math.Min(chunk, longer.Size - off);
            longer.Read(off, ba.AsSpan(0, n));
            var nz = ba.AsSpan(0, n).IndexOfAnyExcept((byte)0);
            if (nz >= 0) return off + nz;
        }
        return -1;
    }
}
