using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Operations;

public sealed record ConvertOptions
{
    public string OutputFormat { get; init; } = "raw";
    public CreateOptions Create { get; init; } = new();
    public bool Compress { get; init; }
    /// <summary>
    /// Worker threads reading (and compressing) chunks; writes stay in guest order so the output is not fragmented.
    /// 0 = automatic: 8 when compressing (qemu-img also keeps 8 requests in flight), else one per CPU (2..8).
    /// </summary>
    public int Workers { get; init; }
    public Action<double>? Progress { get; init; }
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
        var chunk = ChunkSize;
        if (target is Qcow2Image q) chunk = Math.Max(chunk, q.ClusterSize);
        var chunks = (size + chunk - 1) / chunk;
        var next = -1L;
        var turn = 0L;
        var gate = new object();
        Exception? failure = null;
        var done = 0L;
        var workers = options.Workers > 0 ? options.Workers : options.Compress ? 8 : Math.Clamp(Environment.ProcessorCount, 2, 8);
        var threads = new Thread[workers];
        for (var w = 0; w < workers; w++)
        {
            threads[w] = new Thread(() =>
            {
                var buf = new byte[chunk];
                var q = target as Qcow2Image;
                var packed = options.Compress && q != null ? new byte[chunk + (chunk / q.ClusterSize + 1) * q.ClusterSize] : null;
                var lengths = options.Compress && q != null ? new int[chunk / q.ClusterSize + 1] : null;
                while (Volatile.Read(ref failure) == null)
                {
                    var i = Interlocked.Increment(ref next);
                    if (i >= chunks) return;
                    var off = i * chunk;
                    var len = (int)Math.Min(chunk, size - off);
                    try
                    {
                        var data = ReadNonZero(source, off, buf.AsSpan(0, len));
                        // Compression is the expensive part: do it here, in parallel, before waiting for our turn.
                        if (data && packed != null) Compress(q!, buf.AsSpan(0, len), packed, lengths!);
                        lock (gate)
                        {
                            while (turn != i && failure == null) Monitor.Wait(gate);
                        }
                        if (failure != null) return;
                        if (data) WriteChunk(target, off, buf.AsSpan(0, len), packed, lengths);
                        lock (gate)
                        {
                            turn++;
                            Monitor.PulseAll(gate);
                        }
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

    /// <summary>Reads the chunk unless the allocation map says it is all zero; false when nothing needs writing.</summary>
    private static bool ReadNonZero(IBlockImage source, long off, Span<byte> buf)
    {
        var pos = off;
        var end = off + buf.Length;
        var any = false;
        while (pos < end)
        {
            var st = source.GetStatus(pos, end - pos);
            var part = buf.Slice((int)(pos - off), (int)st.Length);
            if (st.Has(BlockStatusFlags.Zero) && !st.Has(BlockStatusFlags.Data)) part.Clear();
            else
            {
                source.Read(pos, part);
                any = true;
            }
            pos += st.Length;
        }
        return any;
    }

    private static void Compress(Qcow2Image q, ReadOnlySpan<byte> data, byte[] packed, int[] lengths)
    {
        var cs = q.ClusterSize;
        for (int pos = 0, i = 0; pos < data.Length; pos += cs, i++)
        {
            var n = Math.Min(cs, data.Length - pos);
            lengths[i] = data.Slice(pos, n).IndexOfAnyExcept((byte)0) < 0 ? 0 : q.CompressCluster(data.Slice(pos, n), packed.AsSpan(i * cs, cs));
        }
    }

    private static void WriteChunk(IBlockImage target, long off, ReadOnlySpan<byte> data, byte[]? packed, int[]? lengths)
    {
        var compress = packed != null;
        var unit = target is Qcow2Image q ? q.ClusterSize : 4096;
        // Write only the units that hold non-zero bytes; zero units stay unallocated in the fresh target.
        var pos = 0;
        while (pos < data.Length)
        {
            var n = Math.Min(unit, data.Length - pos);
            if (data.Slice(pos, n).IndexOfAnyExcept((byte)0) < 0) { pos += n; continue; }
            if (compress)
            {
                var i = pos / unit;
                ((Qcow2Image)target).WriteCompressed(off + pos, data.Slice(pos, n), packed.AsSpan(i * unit, Math.Max(0, lengths![i])));
                pos += n;
                continue;
            }
            var runEnd = pos + n;
            while (runEnd < data.Length)
            {
                var m = Math.Min(unit, data.Length - runEnd);
                if (data.Slice(runEnd, m).IndexOfAnyExcept((byte)0) < 0) break;
                runEnd += m;
            }
            target.Write(off + pos, data[pos..runEnd]);
            pos = runEnd;
        }
    }
}
