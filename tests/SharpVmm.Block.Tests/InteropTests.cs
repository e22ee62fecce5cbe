using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

/// <summary>Byte-level interoperability with qemu-img/qemu-io: each side reads what the other wrote.</summary>
public class InteropTests
{
    private const long Size = 8 << 20;

    public static TheoryData<string> QemuCreateOptions() =>
    [
        "cluster_size=512",
        "cluster_size=4k,refcount_bits=1",
        "cluster_size=64k,refcount_bits=2",
        "refcount_bits=4",
        "refcount_bits=8",
        "refcount_bits=32",
        "refcount_bits=64",
        "cluster_size=2M",
        "compat=0.10",
        "lazy_refcounts=on",
        "preallocation=metadata",
        "preallocation=falloc",
        "preallocation=full,cluster_size=16k",
        "compression_type=zstd",
    ];

    /// <summary>qemu writes, we read and check; we write, qemu reads and checks.</summary>
    [QemuTheory]
    [MemberData(nameof(QemuCreateOptions))]
    public void Images_created_by_qemu_with_each_option_round_trip(string options)
    {
        using var dir = new TempDir();
        var p = dir["q.qcow2"];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", "-o", options, p, Size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var model = new byte[Size];
        (long Off, int Len, byte B)[] theirs = [(0, 70000, 0x11), (3 << 20, 1 << 20, 0x22), (Size - 4096, 4096, 0x33), (5 << 20, 12345, 0x44)];
        var cmds = new List<string>();
        foreach (var (off, len, b) in theirs)
        {
            cmds.Add($"write -P {b} {off} {len}");
            model.AsSpan((int)off, len).Fill(b);
        }
        cmds.Add($"write -z {3 << 20} 65536");
        model.AsSpan(3 << 20, 65536).Clear();
        Qemu.IoOk(p, [.. cmds]);

        using (var img = ImageFactory.OpenQcow2(p))
        {
            ModelTests.AssertSame(img, model);
            var r = Qcow2Checker.Check(img, CheckRepair.None);
            Assert.True(r.Corruptions == 0 && r.Leaks == 0, string.Join('\n', r.Messages));
            (long Off, int Len, byte B)[] ours = [(40000, 100000, 0x55), (6 << 20, 2 << 20, 0x66), (3 << 20, 4096, 0x77)];
            foreach (var (off, len, b) in ours)
            {
                var data = new byte[len];
                Array.Fill(data, b);
                img.Write(off, data);
                data.CopyTo(model.AsSpan((int)off));
            }
            img.WriteZeroes(7 << 20, 1 << 20, unmap: true);
            model.AsSpan(7 << 20, 1 << 20).Clear();
        }
        Qemu.CheckClean(p);
        Qemu.IoOk(p, "read -P 0x55 40000 100000", "read -P 0x66 6291456 1048576", "read -P 0x77 3145728 4096", "read -P 0 7340032 1048576");
        File.WriteAllBytes(dir["m.raw"], model);
        Qemu.ImgOk("compare", "-f", "qcow2", "-F", "raw", p, dir["m.raw"]);
    }

    [QemuFact]
    public void Image_left_dirty_by_a_qemu_crash_with_lazy_refcounts_is_repaired_on_open()
    {
        using var dir = new TempDir();
        var p = dir["lazy.qcow2"];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", p, "8M");
        // qemu-io's abort simulates a crash: the dirty bit stays set and refcounts are stale.
        Qemu.Run(Qemu.Io!, "-c", "write -P 9 0 1M", "-c", "flush", "-c", "abort", p);
        using (var ro = ImageFactory.OpenQcow2(p, new ImageOpenOptions { ReadOnly = true })) Assert.True(ro.IsDirty);
        using (var img = ImageFactory.OpenQcow2(p))
        {
            Assert.False(img.IsDirty);
            var buf = new byte[1 << 20];
            img.Read(0, buf);
            Assert.All(buf, b => Assert.Equal(9, b));
        }
        Qemu.CheckClean(p);
    }

    [QemuFact]
    public void Backing_chains_made_by_either_side_read_the_same()
    {
        using var dir = new TempDir();
        // qemu's chain: raw base, two qcow2 overlays.
        var baseData = Pattern.Make(0, 4 << 20, 1);
        File.WriteAllBytes(dir["base.raw"], baseData);
        Qemu.ImgOk("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", dir["mid.qcow2"]);
        Qemu.IoOk(dir["mid.qcow2"], "write -P 1 64k 64k", "write -z 1M 128k");
        Qemu.ImgOk("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "-b", "mid.qcow2", "-F", "qcow2", dir["top.qcow2"], "6M");
        Qemu.IoOk(dir["top.qcow2"], "write -P 2 100k 10k", "write -P 3 5M 4k");
        var model = new byte[6 << 20];
        baseData.CopyTo(model, 0);
        model.AsSpan(64 << 10, 64 << 10).Fill(1);
        model.AsSpan(1 << 20, 128 << 10).Clear();
        model.AsSpan(100 << 10, 10 << 10).Fill(2);
        model.AsSpan(5 << 20, 4 << 10).Fill(3);
        using (var top = ImageFactory.Open(dir["top.qcow2"], new ImageOpenOptions { ReadOnly = true }))
            ModelTests.AssertSame(top, model);

        // Our chain, read by qemu; writes into our overlay copy-on-write from the backing file.
        using (var b = ImageFactory.Create(dir["ob.qcow2"], "qcow2", 4 << 20))
            b.Write(0, baseData);
        using (var o = ImageFactory.Create(dir["oo.qcow2"], "qcow2", 4 << 20, new CreateOptions { BackingFile = "ob.qcow2", BackingFormat = "qcow2", ClusterSize = 65536 }))
        {
            o.Write(65536 + 100, new byte[] { 1, 2, 3 });
            baseData[65536 + 100] = 1;
            baseData[65536 + 101] = 2;
            baseData[65536 + 102] = 3;
            o.WriteZeroes(2 << 20, 65536, false);
            baseData.AsSpan(2 << 20, 65536).Clear();
        }
        File.WriteAllBytes(dir["expect.raw"], baseData);
        Qemu.CheckClean(dir["oo.qcow2"]);
        Qemu.ImgOk("compare", "-F", "raw", dir["oo.qcow2"], dir["expect.raw"]);
        Assert.Contains("\"depth\": 1", Qemu.ImgOk("map", "--output=json", dir["oo.qcow2"]), StringComparison.Ordinal);
    }

    [QemuFact]
    public void Snapshots_made_by_either_side_are_usable_by_the_other()
    {
        using var dir = new TempDir();
        var p = dir["s.qcow2"];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", p, "4M");
        Qemu.IoOk(p, "write -P 1 0 1M");
        Qemu.ImgOk("snapshot", "-c", "one", p);
        Qemu.IoOk(p, "write -P 2 0 512k");
        using (var img = ImageFactory.OpenQcow2(p))
        {
            Assert.Equal("one", Assert.Single(img.Snapshots).Name);
            img.CreateSnapshot("two");
            img.Write(0, Fill(4096, 3));
            img.ApplySnapshot("one");
            var buf = new byte[1 << 20];
            img.Read(0, buf);
            Assert.All(buf, b => Assert.Equal(1, b));
            img.Write(1 << 20, Fill(65536, 4));
        }
        Qemu.CheckClean(p);
        Qemu.IoOk(p, "read -P 1 0 1M", "read -P 4 1M 64k");
        Qemu.ImgOk("snapshot", "-a", "two", p);
        Qemu.IoOk(p, "read -P 2 0 512k", "read -P 1 512k 512k");
        using (var img = ImageFactory.OpenQcow2(p))
        {
            img.DeleteSnapshot("one");
            img.DeleteSnapshot("two");
        }
        Qemu.CheckClean(p);
        Assert.DoesNotContain("two", Qemu.ImgOk("snapshot", "-l", p), StringComparison.Ordinal);
        Qemu.IoOk(p, "read -P 2 0 512k");
    }

    [QemuFact]
    public void Compressed_images_from_qemu_read_back_and_can_be_overwritten()
    {
        using var dir = new TempDir();
        var raw = new byte[3 << 20];
        for (var i = 0; i < raw.Length; i++) raw[i] = (byte)(i / 1000 % 7 == 0 ? i : i / 3000);
        File.WriteAllBytes(dir["r.raw"], raw);
        foreach (var type in new[] { "zlib", "zstd" })
        {
            var p = dir[$"c-{type}.qcow2"];
            Qemu.ImgOk("convert", "-c", "-f", "raw", "-O", "qcow2", "-o", $"compression_type={type}", dir["r.raw"], p);
            using (var img = ImageFactory.OpenQcow2(p))
            {
                ModelTests.AssertSame(img, raw);
                var r = Qcow2Checker.Check(img, CheckRepair.None);
                Assert.True(r.CompressedClusters > 0 && r.Corruptions == 0 && r.Leaks == 0, string.Join('\n', r.Messages));
                img.Write(70000, Fill(100, 0xee));
            }
            raw.AsSpan(70000, 100).Fill(0xee);
            Qemu.CheckClean(p);
            File.WriteAllBytes(dir["m.raw"], raw);
            Qemu.ImgOk("compare", "-F", "raw", p, dir["m.raw"]);
            raw.AsSpan(70000, 100).Clear();
            for (var i = 70000; i < 70100; i++) raw[i] = (byte)(i / 1000 % 7 == 0 ? i : i / 3000);
        }
    }

    [QemuFact]
    public void Extended_l2_images_are_read_per_subcluster_and_refused_for_writing()
    {
        using var dir = new TempDir();
        var p = dir["x.qcow2"];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", p, "4M");
        // 2 KiB subclusters: write pieces of one cluster, zero one subcluster.
        Qemu.IoOk(p, "write -P 5 2k 2k", "write -P 6 10k 6k", "write -z 64k 2k", "write -P 7 1M 64k");
        var model = new byte[4 << 20];
        model.AsSpan(2048, 2048).Fill(5);
        model.AsSpan(10240, 6144).Fill(6);
        model.AsSpan(1 << 20, 65536).Fill(7);
        using (var img = ImageFactory.OpenQcow2(p, new ImageOpenOptions { ReadOnly = true }))
        {
            Assert.True(img.ExtendedL2);
            ModelTests.AssertSame(img, model);
            var r = Qcow2Checker.Check(img, CheckRepair.None);
            Assert.True(r.Corruptions == 0 && r.Leaks == 0, string.Join('\n', r.Messages));
        }
        var e = Assert.Throws<BlockImageException>(() => ImageFactory.OpenQcow2(p));
        Assert.Contains("extended L2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Concurrent_requests_from_many_threads_keep_every_write()
    {
        using var dir = new TempDir();
        var p = dir["c.qcow2"];
        const int threads = 8;
        const int perThread = 3 << 20;
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using (var img = ImageFactory.Create(p, "qcow2", threads * (long)perThread, new CreateOptions { ClusterSize = 4096 }))
        {
            var ts = new Thread[threads];
            for (var t = 0; t < threads; t++)
            {
                var id = t;
                ts[t] = new Thread(() =>
                {
                    // An exception escaping a thread would kill the test host; collect it for the assertion below.
                    try
                    {
                        var rng = new Random(id);
                        var baseOff = (long)id * perThread;
                        for (var i = 0; i < 300; i++)
                        {
                            var off = baseOff + rng.Next(perThread - 9000);
                            var len = rng.Next(1, 9000);
                            img.Write(off, Pattern.Make(off, len, id));
                            var back = new byte[len];
                            img.Read(off, back);
                            if (!back.AsSpan().SequenceEqual(Pattern.Make(off, len, id)))
                                errors.Enqueue($"thread {id}: {len} bytes at {off} read back differently");
                            if (i % 50 == 0) img.Flush();
                        }
                    }
                    catch (Exception e) { errors.Enqueue($"thread {id}: {e}"); }
                });
                ts[t].Start();
            }
            foreach (var t in ts) t.Join();
            Assert.True(errors.IsEmpty, string.Join('\n', errors));
            img.Flush();
        }
        using (var ro = ImageFactory.OpenQcow2(p, new ImageOpenOptions { ReadOnly = true }))
        {
            var r = Qcow2Checker.Check(ro, CheckRepair.None);
            Assert.True(r.Corruptions == 0 && r.Leaks == 0, string.Join('\n', r.Messages));
        }
        if (Qemu.Available) Qemu.CheckClean(p);
    }

    private static byte[] Fill(int n, byte b)
    {
        var a = new byte[n];
        Array.Fill(a, b);
        return a;
    }
}
