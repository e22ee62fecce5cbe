using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Operations;

public sealed record ConvertOptions
{
    public string OutputFormat { get; init; } = "raw";
    public CreateOptions Create { get; init; } = new();
    public bool Compress { get; init; }
    /// <summary>
    /// Worker threads reading, compressing and writing chunks; qcow2 clusters are still allocated in guest order so the
    /// output is not fragmented. 0 = automatic: 8 when compressing (as qemu-img's 8 coroutines), else 4.
    /// </summary>
    public int Workers { get; init; }
    public Action<double>? Progress { get; init; }
    /// <summary>Bytes each worker reads and writes at a time (at least one target cluster); 0 = 2 MiB.</summary>
    public int ChunkBytes { get; init; }
    /// <summary>
    /// qemu-img convert -W: qcow2 clusters are allocated in whatever order the workers finish reading, not in guest
    /// order (raw output never needs an order). Ignored with compression, as in qemu-img.
    /// </summary>
    public bool OutOfOrder { get; init; }
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
        using var target = ImageFactory.Create(outputPath, options.OutputFormat, source.Size, options.Create with { IgnoreFlushes = !options.Durable });
        if (options.Compress && target is not Qcow2Image)
            throw new BlockImageException("compression (-c) needs the qcow2 output format");
        Copy(source, target, options);
        target.Flush();
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
        // Only qcow2 allocation needs an order (clusters laid out in guest order); compressed clusters are packed in it.
        var ordered = q != null && (!options.OutOfOrder || compress);
        var next = -1L;
        var turn = 0L;
        var gate = new object();
        Exception? failure = null;
        var done = 0L;
        var workers = options.Workers > 0 ? options.Workers : compress ? 8 : 4;
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
                        // Reading, zero detection and compression run in parallel; only allocation waits its turn.
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
                        if (mine)
                        {
                            lock (gate)
                            {
                                turn++;
                                mine = false;
                                Monitor.PulseAll(gate);
                            }
                        }
                        // The data itself, the bulk of the work, goes out in parallel with the other workers.
                        if (q != null)
                            for (var k = 0; k < nWrites; k++)
                                q.WriteMapped(writes[3 * k], plan.At((nint)writes[3 * k + 1], (int)writes[3 * k + 2]));
                        else
                            for (var k = 0; k < plan.Runs; k++)
                                target.Write(off + plan.RunStart[k], plan.Run(k));
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
