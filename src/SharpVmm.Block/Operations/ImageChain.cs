using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Operations;

/// <summary>qemu-img commit and rebase: moving data between an overlay and its backing files.</summary>
public static class ImageChain
{
    /// <summary>Copies every range the top image stores into its backing file; then empties the top unless told not to.</summary>
    public static void Commit(string topPath, bool keepTop, Action<double>? progress = null)
    {
        using var top = ImageFactory.OpenQcow2(topPath, new ImageOpenOptions { OpenBacking = false });
        var backingName = top.BackingFileName ?? throw new BlockImageException($"'{topPath}' has no backing file to commit into");
        var backingPath = Path.IsPathRooted(backingName) ? backingName : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(topPath)) ?? ".", backingName);
        using var backing = ImageFactory.Open(backingPath, new ImageOpenOptions { Format = top.BackingFormat });
        if (top.Size > backing.Size) backing.Resize(top.Size, false);
        var buf = new byte[2 << 20];
        long pos = 0;
        while (pos < top.Size)
        {
            var st = top.GetStatus(pos, Math.Min(buf.Length, top.Size - pos));
            if (st.Has(BlockStatusFlags.Present))
            {
                var n = (int)st.Length;
                if (st.Has(BlockStatusFlags.Zero)) backing.WriteZeroes(pos, n, unmap: false);
                else
                {
                    top.Read(pos, buf.AsSpan(0, n));
                    backing.Write(pos, buf.AsSpan(0, n));
                }
            }
            pos += st.Length;
            progress?.Invoke(100.0 * pos / top.Size);
        }
        backing.Flush();
        if (!keepTop)
        {
            // The top now adds nothing: drop its clusters so it reads through to the backing file again.
            for (long off = 0; off < top.Size; off += 1L << 30)
                top.Discard(off, Math.Min(1L << 30, top.Size - off));
            top.Flush();
        }
    }

    /// <summary>
    /// Changes the backing file. Safe mode first copies into the overlay every range where the old and the new
    /// backing chain differ, so the guest-visible contents stay the same; unsafe mode only rewrites the name.
    /// </summary>
    public static void Rebase(string path, string? newBacking, string? newFormat, bool unsafeMode, Action<double>? progress = null)
    {
        if (unsafeMode)
        {
            using var img = ImageFactory.OpenQcow2(path, new ImageOpenOptions { OpenBacking = false });
            img.SetBackingFile(newBacking, newFormat);
            return;
        }
        using var top = ImageFactory.OpenQcow2(path);
        IBlockImage? nb = null;
        if (!string.IsNullOrEmpty(newBacking))
        {
            var p = Path.IsPathRooted(newBacking) ? newBacking : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", newBacking);
            nb = ImageFactory.Open(p, new ImageOpenOptions { Format = newFormat, ReadOnly = true });
        }
        try
        {
            var old = top.Backing;
            var chunk = Math.Max(top.ClusterSize, 65536);
            var a = new byte[chunk];
            var b = new byte[chunk];
            long pos = 0;
            while (pos < top.Size)
            {
                var st = top.GetStatus(pos, Math.Min(chunk, top.Size - pos));
                var n = (int)st.Length;
                if (st.Depth > 0 || !st.Has(BlockStatusFlags.Present))
                {
                    ReadOr0(old, pos, a.AsSpan(0, n));
                    ReadOr0(nb, pos, b.AsSpan(0, n));
                    if (!a.AsSpan(0, n).SequenceEqual(b.AsSpan(0, n))) top.Write(pos, a.AsSpan(0, n));
                }
                pos += n;
                progress?.Invoke(100.0 * pos / top.Size);
            }
            top.Flush();
            top.SetBackingFile(newBacking, newBacking == null ? null : newFormat ?? (nb?.FormatName));
            top.ReplaceBacking(nb);
            nb = null;
        }
        finally { nb?.Dispose(); }
    }

    private static void ReadOr0(IBlockImage? img, long pos, Span<byte> buf)
    {
        if (img == null || pos >= img.Size) { buf.Clear(); return; }
        var n = (int)Math.Min(buf.Length, img.Size - pos);
        img.Read(pos, buf[..n]);
        buf[n..].Clear();
    }
}
