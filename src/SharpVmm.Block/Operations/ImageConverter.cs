using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Operations;

public sealed record ConvertOptions
{
    public string OutputFormat { get; init; } = "raw";
    public CreateOptions Create { get; init; } = new();
    public bool Compress { get; init; }
    /// <summary>
    /// Worker threads reading, compressing and writing chunks; unless <see cref="OutOfOrder"/>, chunks are written one at
    /// a time in guest order. 0 = automatic: 8 when compressing (as qemu-img's 8 coroutines), else one per core (2 to 4).
    /// </summary>
    public int Workers { get; init; }
    public Action<double>? Progress { get; init; }
    /// <summary>Bytes each worker reads and writes at a time (at least one target cluster); 0 = 2 MiB.</summary>
    public int ChunkBytes { get; init; }
    /// <summary>
    /// qemu-img convert -W: chunks are written (and qcow2 clusters allocated) in whatever order the workers finish
    /// reading them, several at once, instead of one at a time in guest order. Ignored with compression, as in qemu-img.
    /// </summary>
    public bool OutOfOrder { get; init; }
    /// <summary>
    /// qemu-img convert -n: write into the existing image at the output path instead of creating one. Its old contents
    /// are not assumed to be zero, so every range that reads as zero in the source is zeroed in it too.
    /// </summary>
    public bool UseExistingTarget { get; init; }
    /// <summary>
    /// qemu-img convert -B: the output is created as an overlay of this file (the source's own backing file, or a copy
    /// of it), and only what the source's top image stores is copied; the rest is left to the backing file.
    /// </summary>
    public string? BackingFile { get; init; }
    public string? BackingFormat { get; init; }
    /// <summary>Wait for the disk at the end (qemu-img convert -t writeback); off by default, as in qemu-img (-t unsafe).</summary>
    public bool Durable { get; init; }
}

/// <summary>
/// qemu-img convert: copies the guest-visible contents of an image (with its backing chain) into a new image,
/// skipping ranges that read as zero so the output stays sparse.
/// </summary>
public static class ImageConverter
{
    private const int ChunkSize = 2 << 20;

    public static void Convert(IBlockImage source, string outputPath, ConvertOptions options)
    {
        if (options.Compress && options.OutputFormat != "qcow2")
            throw new BlockImageException("compression (-c) needs the qcow2 output format");
        if (options.BackingFile != null && options.OutputFormat != "qcow2")
            throw new BlockImageException($"a backing file (-B) needs the qcow2 output format; '{options.OutputFormat}' has none");
        if (options.BackingFormat != null && options.BackingFile == null)
            throw new BlockImageException("a backing format (-F) needs a backing file (-B)");
        if (options.BackingFile != null && options.UseExistingTarget)
            throw new BlockImageException("-B and -n cannot be combined: -n keeps the existing target with its own backing file");
        using var target = options.UseExistingTarget ? OpenExisting(outputPath, options) : CreateTarget(source, outputPath, options);
        if (options.BackingFile != null) CopyTopLayer(source, target);
        else Copy(source, target, options);
        target.Flush();
    }

    private static IBlockImage CreateTarget(IBlockImage source, string outputPath, ConvertOptions options)
    {
        var create = options.Create with { IgnoreFlushes = !options.Durable };
        if (options.BackingFile == null) return ImageFactory.Create(outputPath, options.OutputFormat, source.Size, create);
        // Relative backing names are relative to the new image, as qemu-img resolves them.
        var full = Path.IsPathRooted(options.BackingFile) ? options.BackingFile
            : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outputPath)) ?? ".", options.BackingFile);
        var fmt = options.BackingFormat ?? ImageFactory.Probe(full);
        ImageFactory.Create(outputPath, "qcow2", source.Size, create with { BackingFile = options.BackingFile, BackingFormat = fmt }).Dispose();
        return ImageFactory.Open(outputPath, new ImageOpenOptions { Format = "qcow2", IgnoreFlushes = create.IgnoreFlushes });
    }

    private static IBlockImage OpenExisting(string outputPath, ConvertOptions options)
    {
        var target = ImageFactory.Open(outputPath, new ImageOpenOptions { Format = options.OutputFormat, IgnoreFlushes = !options.Durable });
        return target;
    }

    /// <summary>
    /// convert -B: copies only what the source's top image itself stores, as qemu-img does: its data (zeroes in it
    /// become zero clusters, since the backing file below may hold data there) and its zero clusters; ranges the top
    /// image leaves to its backing chain are left to the target's backing file.
    /// </summary>
    private static void CopyTopLayer(IBlockImage source, IBlockImage target)
    {
        var buf = new byte[ChunkSize];
        var unit = target is Qcow2Image q ? q.ClusterSize : 4096;
        for (long pos = 0; pos < source.Size;)
        {
            var st = source.GetStatus(pos, Math.Min(ChunkSize, source.Size - pos));
            if (st.Depth == 0 && st.Has(BlockStatusFlags.Present))
            {
                if (st.Has(BlockStatusFlags.Zero) && !st.Has(BlockStatusFlags.Data)) target.WriteZeroes(pos, st.Length, unmap: false);
                else
                {
                    var data = buf.AsSpan(0, (int)st.Length);
                    source.Read(pos, data);
                    for (var u = 0; u < data.Length;)
                    {
                        var n = Math.Min(unit - (int)((pos + u) % unit), data.Length - u);
                        var piece = data.Slice(u, n);
                        if (piece.IndexOfAnyExcept((byte)0) < 0) target.WriteZeroes(pos + u, n, unmap: false);
                        else target.Write(pos + u, piece);
                        u += n;
                    }
                }
            }
            pos += st.Length;
        }
    }

    /// <summary>Copies every non-zero range of source into target (which must read as zero where nothing is written).</summary>
    public static void Copy(IBlockImage source, IBlockImage target, ConvertOptions options)
    {
        var size = Math.Min(source.Size, target.Size);
        var q = target as Qcow2Image;
        var chunk = Math.Max(options.ChunkBytes > 0 ? options.ChunkBytes : ChunkSize, q?.ClusterSize ?? 4096);
        chunk -= chunk % (q?.ClusterSize ?? 4096);
        // Zero detection granularity: a target cluster, or 4 KiB for raw (qemu-img convert's default -S 4k).
        var unit = q?.ClusterSize ?? 4096;
        var chunks = (size + chunk - 1) / chunk;
        var compress = options.Compress && q != null;
        if (target.Size < source.Size)
            throw new BlockImageException($"the target '{target.Path}' ({target.Size} bytes) is smaller than the source ({source.Size} bytes)");
        // A target that may hold old data (convert -n) gets every zero range of the source zeroed explicitly.
        var zeroGaps = options.UseExistingTarget;
        // In order unless -W (never for compression, whose clusters are packed in guest order).
        var ordered = !options.OutOfOrder || compress;
        var next = -1L;
        var turn = 0L;
        var gate = new object();
        Exception? failure = null;
        var done = 0L;
        // Without compression the copy is nearly all kernel time (page-cache copies in and out), so threads beyond the
        // cores only queue on the turn and on the file: measured on 2 cores, 2 workers beat 4 by ~10% wall and CPU.
        var workers = options.Workers > 0 ? options.Workers : compress ? 8 : Math.Clamp(Environment.ProcessorCount, 2, 4);
        var threads = new Thread[workers];
        for (var w = 0; w < workers; w++)
        {
            threads[w] = new Thread(() =>
            {
                var plan = new ChunkPlan(chunk, unit);
                var units = chunk / unit + 1;
                var writes = new long[units * 3 + 3];
                var packed = compress ? new byte[units * q!.ClusterSize] : null;
                var lengths = compress ? new int[units] : null;
                while (Volatile.Read(ref failure) == null)
                {
                    var i = Interlocked.Increment(ref next);
                    if (i >= chunks) return;
                    var off = i * chunk;
                    var len = (int)Math.Min(chunk, size - off);
                    var mine = false;
                    try
                    {
                        // Reading, zero detection and compression run in parallel; allocation and writing take turns.
                        plan.Load(source, off, len);
                        if (packed != null) Compress(q!, plan, packed, lengths!);
                        if (ordered)
                        {
                            lock (gate)
                            {
                                while (turn != i && failure == null) Monitor.Wait(gate);
                            }
                            if (Volatile.Read(ref failure) != null) return;
                            mine = true;
                        }
                        var nWrites = 0;
                        if (packed != null) WriteCompressed(q!, off, plan, packed, lengths!);
                        else if (q != null) nWrites = Map(q, off, plan, writes);
                        // The data itself: in order, one chunk at a time (as qemu-img without -W: concurrent writers
                        // into one file only contend for its inode lock), or with -W straight away in parallel.
                        if (q != null)
                            for (var k = 0; k < nWrites; k++)
                                q.WriteMapped(writes[3 * k], plan.At((nint)writes[3 * k + 1], (int)writes[3 * k + 2]));
                        else if (target is Raw.RawImage raw)
                            for (var k = 0; k < plan.Runs; k++)
                                raw.WriteFresh(off + plan.RunStart[k], plan.Run(k));
                        else
                            for (var k = 0; k < plan.Runs; k++)
                                target.Write(off + plan.RunStart[k], plan.Run(k));
                        if (mine)
                        {
                            lock (gate)
                            {
                                turn++;
                                mine = false;
                                Monitor.PulseAll(gate);
                            }
                        }
                        if (zeroGaps) ZeroGaps(target, off, len, plan);
                        var d = Interlocked.Increment(ref done);
                        options.Progress?.Invoke(100.0 * d / chunks);
                    }
                    catch (Exception e)
                    {
                        lock (gate)
                        {
                            failure ??= e;
                            Monitor.PulseAll(gate);
                        }
                        return;
                    }
                }
            }) { IsBackground = true, Name = "convert" };
            threads[w].Start();
        }
        foreach (var t in threads) t.Join();
        if (failure != null) throw failure is BlockImageException ? failure : new BlockImageException($"convert failed: {failure.Message}", failure);
        options.Progress?.Invoke(100.0);
    }

    /// <summary>
    /// Allocates (in the caller's turn) the host space for every run, writing through the general path whatever cannot
    /// be mapped; returns the number of (host offset, source address, length) triples left for the caller to write.
    /// </summary>
    private static int Map(Qcow2Image q, long off, ChunkPlan plan, long[] writes)
    {
        var n = 0;
        for (var k = 0; k < plan.Runs; k++)
        {
            var pos = plan.RunStart[k];
            var end = pos + plan.RunLen[k];
            var src = plan.RunPtr[k];
            while (pos < end)
            {
                var host = q.MapForWrite(off + pos, end - pos, out var mapped);
                if (host < 0)
                {
                    // Old contents to merge or a backing file to copy from: one cluster through the general path.
                    var c = Math.Min(end - pos, q.ClusterSize - (int)((off + pos) & (q.ClusterSize - 1)));
                    q.Write(off + pos, plan.At(src, c));
                    pos += c;
                    src += c;
                    continue;
                }
                if (n > 0 && writes[3 * n - 3] + writes[3 * n - 1] == host && writes[3 * n - 2] + writes[3 * n - 1] == src)
                    writes[3 * n - 1] += mapped;
                else
                {
                    if (3 * n + 2 >= writes.Length) throw new InvalidOperationException("more mapped runs than units");
                    writes[3 * n] = host;
                    writes[3 * n + 1] = src;
                    writes[3 * n + 2] = mapped;
                    n++;
                }
                pos += (int)mapped;
                src += (nint)mapped;
            }
        }
        return n;
    }

    /// <summary>Zeroes the parts of a chunk that no run covers (they read as zero in the source).</summary>
    private static void ZeroGaps(IBlockImage target, long off, int len, ChunkPlan plan)
    {
        var pos = 0;
        for (var k = 0; k <= plan.Runs; k++)
        {
            var end = k < plan.Runs ? plan.RunStart[k] : len;
            if (end > pos) target.WriteZeroes(off + pos, end - pos, unmap: true);
            if (k < plan.Runs) pos = plan.RunStart[k] + plan.RunLen[k];
        }
    }

    private static void Compress(Qcow2Image q, ChunkPlan plan, byte[] packed, int[] lengths)
    {
        var cs = q.ClusterSize;
        for (var k = 0; k < plan.Runs; k++)
            for (var pos = 0; pos < plan.RunLen[k]; pos += cs)
            {
                var i = (plan.RunStart[k] + pos) / cs;
                lengths[i] = Math.Max(0, q.CompressCluster(plan.At(plan.RunPtr[k] + pos, Math.Min(cs, plan.RunLen[k] - pos)), packed.AsSpan(i * cs, cs)));
            }
    }

    private static void WriteCompressed(Qcow2Image q, long off, ChunkPlan plan, byte[] packed, int[] lengths)
    {
        var cs = q.ClusterSize;
        for (var k = 0; k < plan.Runs; k++)
            for (var pos = 0; pos < plan.RunLen[k]; pos += cs)
            {
                var i = (plan.RunStart[k] + pos) / cs;
                q.WriteCompressed(off + plan.RunStart[k] + pos, plan.At(plan.RunPtr[k] + pos, Math.Min(cs, plan.RunLen[k] - pos)), packed.AsSpan(i * cs, lengths[i]));
            }
    }
}
