using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

/// <summary>The refcount entry formats and the cluster allocator, on images this code creates (no qemu-img).</summary>
public class RefcountTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Every_refcount_width_stores_its_maximum_without_touching_neighbours(int order)
    {
        var width = new RefcountWidth(order);
        Assert.Equal(order == 6 ? ulong.MaxValue : (1UL << (1 << order)) - 1, width.Max);
        var block = new byte[512];
        int entries = 512 * 8 / width.Bits;
        Assert.Equal(entries, 1 << width.EntriesPerBlockBits(9));
        for (int i = 0; i < entries; i += 3) width.Write(block, i, width.Max);
        for (int i = 0; i < entries; i++) Assert.Equal(i % 3 == 0 ? width.Max : 0UL, width.Read(block, i));
        width.Write(block, 3, 1);
        Assert.Equal(1UL, width.Read(block, 3));
        Assert.Equal(0UL, width.Read(block, 4));
        Assert.Equal(width.Max, width.Read(block, 6));
    }

    [Fact]
    public void Sixteen_bit_refcounts_are_big_endian_on_disk()
    {
        var block = new byte[8];
        new RefcountWidth(4).Write(block, 1, 0x1234);
        Assert.Equal(new byte[] { 0, 0, 0x12, 0x34, 0, 0, 0, 0 }, block);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(1)]
    public void Allocated_runs_are_fresh_clusters_with_refcount_one_and_a_check_finds_them_leaked(int refcountBits)
    {
        using var dir = new TempDir();
        var path = dir["a.qcow2"];
        var allocated = new HashSet<long>();
        using (var img = (Qcow2Image)ImageFactory.Create(path, "qcow2", 64 << 20, new CreateOptions { ClusterSize = 512, RefcountBits = refcountBits }))
        {
            // 512-byte clusters: one refcount block covers 256 (16-bit) or 4096 (1-bit) clusters and the first refcount
            // table 64 blocks, so this many clusters needs new blocks and, for 16 bits, a larger table.
            while (allocated.Count < 20_000)
            {
                long off = img.AllocateRun(7, out int got);
                Assert.InRange(got, 1, 7);
                Assert.Equal(0, off % 512);
                for (int i = 0; i < got; i++)
                {
                    long c = (off >> 9) + i;
                    Assert.True(allocated.Add(c), $"cluster {c} handed out twice");
                    Assert.False(img.OverlapsFixedMetadata(c << 9, 512));
                    Assert.Equal(1UL, img.GetRefcount(c));
                }
            }
            Assert.True(img.RefcountTable.Length > 64 || refcountBits == 1);
        }
        using (var img = (Qcow2Image)ImageFactory.Open(path, new ImageOpenOptions()))
        {
            foreach (var c in allocated) Assert.Equal(1UL, img.GetRefcount(c));
            var r = Qcow2Checker.Check(img, CheckRepair.None);
            Assert.Equal(0, r.Corruptions);
            Assert.Equal(allocated.Count, r.Leaks); // nothing points at them: leaked, not corrupt
        }
    }

    [Fact]
    public void A_released_cluster_is_the_next_one_handed_out()
    {
        using var dir = new TempDir();
        using var img = (Qcow2Image)ImageFactory.Create(dir["a.qcow2"], "qcow2", 1 << 20, new CreateOptions { ClusterSize = 4096 });
        long a = img.AllocateRun(4, out int got) >> 12;
        Assert.Equal(4, got);
        img.AddRefcount(a + 1, -1);
        Assert.Equal(0UL, img.GetRefcount(a + 1));
        Assert.Equal((a + 1) << 12, img.AllocateRun(1, out _));
        Assert.Equal(1UL, img.GetRefcount(a + 1));
    }

    [Fact]
    public void A_refcount_past_the_width_is_a_clear_error_and_below_zero_is_corruption()
    {
        using var dir = new TempDir();
        using var img = (Qcow2Image)ImageFactory.Create(dir["a.qcow2"], "qcow2", 1 << 20, new CreateOptions { ClusterSize = 4096, RefcountBits = 1 });
        long c = img.AllocateRun(1, out _) >> 12;
        var e = Assert.Throws<BlockImageException>(() => img.AddRefcount(c, 1));
        Assert.Contains("refcount_bits", e.Message);
        img.AddRefcount(c, -1);
        Assert.Throws<ImageCorruptException>(() => img.AddRefcount(c, -1));
    }
}
