using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

public class RawAndEdgeTests
{
    [Fact]
    public void Raw_image_reads_writes_zeroes_discards_maps_and_resizes()
    {
        using var dir = new TempDir();
        var p = dir["r.raw"];
        using var img = ImageFactory.Create(p, "raw", 4 << 20);
        Assert.Equal("raw", ImageFactory.Probe(p));
        var data = Pattern.Make(100000, 300000, 7);
        img.Write(100000, data);
        var back = new byte[data.Length];
        img.Read(100000, back);
        Assert.Equal(data, back);
        img.WriteZeroes(1 << 20, 65536, unmap: true);
        img.Discard(200000, 4096);
        img.Read(1 << 20, back.AsSpan(0, 65536));
        Assert.True(back.AsSpan(0, 65536).IndexOfAnyExcept((byte)0) < 0);
        img.Read(200000, back.AsSpan(0, 4096));
        Assert.True(back.AsSpan(0, 4096).IndexOfAnyExcept((byte)0) < 0);
        var st = img.GetStatus(3 << 20, 1 << 20);
        Assert.True(st.Has(BlockStatusFlags.Zero), "the untouched tail of a sparse raw file maps as zero");
        img.Resize(8 << 20, false);
        Assert.Equal(8 << 20, img.Size);
        Assert.Throws<BlockImageException>(() => img.Resize(1 << 20, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => img.Read(8 << 20, new byte[1]));
        img.Flush();
    }

    [Fact]
    public void One_bit_refcounts_refuse_a_snapshot_with_a_clear_error_and_stay_consistent()
    {
        using var dir = new TempDir();
        var p = dir["a.qcow2"];
        using (var img = (Qcow2Image)ImageFactory.Create(p, "qcow2", 1 << 20, new CreateOptions { RefcountBits = 1 }))
        {
            img.Write(0, new byte[65536]);
            var e = Assert.Throws<BlockImageException>(() => img.CreateSnapshot("s"));
            Assert.Contains("refcount_bits", e.Message, StringComparison.Ordinal);
        }
        var r = ImageCheck.Run(p, CheckRepair.None);
        Assert.Equal(0, r.Corruptions);
    }

    [Fact]
    public void Growing_past_the_refcount_table_and_l1_moves_them_and_keeps_data()
    {
        using var dir = new TempDir();
        var p = dir["g.qcow2"];
        long rtBefore;
        using (var img = (Qcow2Image)ImageFactory.Create(p, "qcow2", 1 << 20, new CreateOptions { ClusterSize = 512, RefcountBits = 64 }))
        {
            rtBefore = img.Header.RefcountTableOffset;
            img.Write(0, Pattern.Make(0, 1 << 20, 1));
            img.Resize(16 << 20, false);
            img.Write(15 << 20, Pattern.Make(15 << 20, 1 << 20, 2));
            Assert.NotEqual(rtBefore, img.Header.RefcountTableOffset);
        }
        using (var img = ImageFactory.OpenQcow2(p, new ImageOpenOptions { ReadOnly = true }))
        {
            var b = new byte[1 << 20];
            img.Read(0, b);
            Assert.Equal(Pattern.Make(0, 1 << 20, 1), b);
            img.Read(15 << 20, b);
            Assert.Equal(Pattern.Make(15 << 20, 1 << 20, 2), b);
            var r = Qcow2Checker.Check(img, CheckRepair.None);
            Assert.True(r.Corruptions == 0 && r.Leaks == 0, string.Join('\n', r.Messages));
        }
        if (Qemu.Available) Qemu.CheckClean(p);
    }

    [Fact]
    public void Discard_on_an_overlay_falls_back_to_zero_not_to_the_backing_file()
    {
        using var dir = new TempDir();
        using (var b = ImageFactory.Create(dir["b.qcow2"], "qcow2", 1 << 20)) b.Write(0, Pattern.Make(0, 1 << 20, 3));
        using (var o = ImageFactory.Create(dir["o.qcow2"], "qcow2", 1 << 20, new CreateOptions { BackingFile = "b.qcow2", BackingFormat = "qcow2" }))
        {
            o.Write(0, new byte[] { 1 });
            o.Discard(0, 65536);
            o.WriteZeroes(65536, 65536, unmap: true);
            var buf = new byte[131072];
            o.Read(0, buf);
            Assert.True(buf.AsSpan().IndexOfAnyExcept((byte)0) < 0);
            o.Read(131072, buf.AsSpan(0, 4096));
            Assert.Equal(Pattern.Make(131072, 4096, 3), buf.AsSpan(0, 4096).ToArray());
        }
        if (Qemu.Available)
        {
            Qemu.CheckClean(dir["o.qcow2"]);
            Qemu.IoOk(dir["o.qcow2"], "read -P 0 0 128k");
        }
    }
}
