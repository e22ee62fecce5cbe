using SharpVmm.Block.Operations;

namespace SharpVmm.Block.Tests;

/// <summary>
/// The parallel convert pipeline (split allocation and data writes, zero detection per unit) against qemu-img: the
/// output must hold the same guest data, pass qemu-img check, and stay as sparse as qemu-img's own output.
/// </summary>
public class ConvertTests
{
    /// <summary>
    /// A source with every kind of extent: data, an all-zero 4 KiB block inside a data cluster, zero clusters,
    /// unallocated space, compressed clusters, data only in the backing file, and a size that ends mid-cluster.
    /// </summary>
    private static string MakeSource(TempDir d, string clusterSize)
    {
        var size = (9 << 20) + 12288 + 512;
        var b = d["base.qcow2"];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", "-o", $"cluster_size={clusterSize}", b, size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Qemu.IoOk(b, "write -P 0x61 6M 256k", "write -P 0x62 9M 12k");
        // Compressed clusters in the backing file, so the chain mixes them with plain ones.
        var c = d["base-c.qcow2"];
        Qemu.ImgOk("convert", "-q", "-c", "-f", "qcow2", "-O", "qcow2", "-o", $"cluster_size={clusterSize}", b, c);
        var s = d["src.qcow2"];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", "-o", $"cluster_size={clusterSize}", "-b", c, "-F", "qcow2", s);
        Qemu.IoOk(s,
            "write -P 0x11 0 1M",
            "write -z 64k 4k",            // zero bytes inside allocated data
            "write -P 0x12 1536k 100k",   // unaligned data run
            "write -z 3M 1M",             // zero clusters
            "write -P 0x13 5M 512k",
            "write -P 0x14 6208k 64k",    // overlay over part of the backing data
            "write -P 0x15 9M 512",       // the short last cluster
            $"write -P 0x16 {size - 512} 512");
        return s;
    }

    [QemuTheory]
    [InlineData("512", "qcow2", false, 1, 0)]
    [InlineData("65536", "qcow2", false, 4, 0)]
    [InlineData("65536", "qcow2", true, 8, 131072)]
    [InlineData("2M", "qcow2", false, 3, 0)]
    [InlineData("65536", "raw", false, 4, 65536)]
    [InlineData("4096", "raw", true, 2, 0)]
    // The default worker count (one per core) and the fallocate-before-write path of fresh runs.
    [InlineData("65536", "raw", false, 0, 0)]
    [InlineData("65536", "qcow2", true, 0, 0)]
    public void Convert_matches_qemu_img(string clusterSize, string fmt, bool outOfOrder, int workers, int chunk)
    {
        using var d = new TempDir();
        var src = MakeSource(d, clusterSize);
        var ours = d["ours." + fmt];
        var theirs = d["theirs." + fmt];
        using (var s = ImageFactory.Open(src, new ImageOpenOptions { ReadOnly = true }))
            ImageConverter.Convert(s, ours, new ConvertOptions
            {
                OutputFormat = fmt,
                OutOfOrder = outOfOrder,
                Workers = workers,
                ChunkBytes = chunk,
                Create = fmt == "qcow2" ? new CreateOptions { ClusterSize = 65536 } : new CreateOptions(),
            });
        Qemu.ImgOk("convert", "-f", "qcow2", "-O", fmt, src, theirs);
        Qemu.ImgOk("compare", "-f", "qcow2", "-F", fmt, src, ours);
        if (fmt == "qcow2")
        {
            Qemu.CheckClean(ours);
            // Same extents (where data is, where zeroes are) as qemu-img's output; host offsets may differ.
            Assert.Equal(Extents(theirs), Extents(ours));
        }
        else Assert.Equal(AllocatedBytes(theirs), AllocatedBytes(ours));
    }

    [QemuFact]
    public void Convert_into_a_preallocated_target_writes_in_place()
    {
        using var d = new TempDir();
        var src = MakeSource(d, "65536");
        var ours = d["ours.qcow2"];
        using (var s = ImageFactory.Open(src, new ImageOpenOptions { ReadOnly = true }))
            ImageConverter.Convert(s, ours, new ConvertOptions
            {
                OutputFormat = "qcow2",
                Create = new CreateOptions { Preallocation = Preallocation.Metadata },
            });
        Qemu.ImgOk("compare", "-f", "qcow2", "-F", "qcow2", src, ours);
        Qemu.CheckClean(ours);
    }

    [QemuFact]
    public void Convert_to_compressed_qcow2_is_read_by_qemu()
    {
        using var d = new TempDir();
        var src = MakeSource(d, "65536");
        var ours = d["ours.qcow2"];
        using (var s = ImageFactory.Open(src, new ImageOpenOptions { ReadOnly = true }))
            ImageConverter.Convert(s, ours, new ConvertOptions { OutputFormat = "qcow2", Compress = true, ChunkBytes = 65536 * 3 });
        Qemu.ImgOk("compare", "-f", "qcow2", "-F", "qcow2", src, ours);
        Qemu.CheckClean(ours);
        using var chk = System.Text.Json.JsonDocument.Parse(Qemu.ImgOk("check", "--output=json", ours));
        Assert.True(chk.RootElement.GetProperty("compressed-clusters").GetInt32() > 0);
    }

    // qemu-img map splits an extent wherever host offsets stop being contiguous, and out-of-order writers allocate
    // clusters in whatever order the workers finish; what must match is the guest view: runs of data, zeroes and holes.
    private static string Extents(string path)
    {
        using var map = System.Text.Json.JsonDocument.Parse(Qemu.ImgOk("map", "--output=json", path));
        var runs = new List<(long Start, long Length, string Kind)>();
        foreach (var e in map.RootElement.EnumerateArray())
        {
            var kind = $"depth={e.GetProperty("depth").GetInt32()} present={e.GetProperty("present").GetBoolean()} " +
                       $"zero={e.GetProperty("zero").GetBoolean()} data={e.GetProperty("data").GetBoolean()}";
            long start = e.GetProperty("start").GetInt64(), length = e.GetProperty("length").GetInt64();
            if (runs.Count > 0 && runs[^1].Kind == kind && runs[^1].Start + runs[^1].Length == start)
                runs[^1] = (runs[^1].Start, runs[^1].Length + length, kind);
            else runs.Add((start, length, kind));
        }
        return string.Join("\n", runs.ConvertAll(r => $"{r.Start}+{r.Length} {r.Kind}"));
    }

    private static long AllocatedBytes(string path)
    {
        using var img = ImageFactory.Open(path, new ImageOpenOptions { ReadOnly = true, Format = "raw" });
        long data = 0;
        for (long off = 0; off < img.Size;)
        {
            var st = img.GetStatus(off, img.Size - off);
            if (st.Has(BlockStatusFlags.Data)) data += st.Length;
            off += st.Length;
        }
        return data;
    }
}
