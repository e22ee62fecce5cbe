using System.Buffers.Binary;
using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

/// <summary>The metadata table cache and the L2 tables on top of it, on images this code creates (no qemu-img).</summary>
public class L2TableCacheTests
{
    [Fact]
    public void A_full_cache_evicts_the_least_recently_used_table_and_writes_it_back_only_when_dirty()
    {
        var store = new RecordingStore();
        var cache = new TableCache(tableSize: 16, capacity: 4, store);
        for (long off = 1; off <= 4; off++) cache.Insert(off * 100).Dirty = off % 2 == 0;
        Assert.NotNull(cache.TryGet(100)); // 100 is now the most recent: 200 is the oldest, and dirty
        cache.Insert(500);
        Assert.Equal(new long[] { 200 }, store.Written);
        Assert.Null(cache.TryGet(200));
        cache.Insert(600); // 300 is clean: evicted without a write
        Assert.Equal(new long[] { 200 }, store.Written);
        Assert.Null(cache.TryGet(300));
        Assert.NotNull(cache.TryGet(100));
    }

    [Fact]
    public void Dirty_tables_are_written_in_offset_order_and_then_clean()
    {
        var store = new RecordingStore();
        var cache = new TableCache(tableSize: 16, capacity: 8, store);
        foreach (long off in new long[] { 700, 100, 400, 300 }) cache.Insert(off).Dirty = off != 300;
        Assert.True(cache.HasDirty);
        cache.WriteDirty();
        Assert.Equal(new long[] { 100, 400, 700 }, store.Written);
        Assert.False(cache.HasDirty);
    }

    [Fact]
    public void A_table_is_read_once_and_a_refused_or_failed_read_leaves_nothing_cached()
    {
        var store = new RecordingStore();
        var cache = new TableCache(tableSize: 16, capacity: 4, store);
        Assert.Equal(0x42, cache.Load(100).Data[0]);
        cache.Load(100);
        Assert.Equal(new long[] { 100 }, store.Reads);
        store.Refuse = 200;
        Assert.Throws<InvalidDataException>(() => cache.Load(200));
        store.Refuse = -1;
        store.FailReads = true;
        Assert.Throws<IOException>(() => cache.Load(300));
        Assert.Null(cache.TryGet(200));
        Assert.Null(cache.TryGet(300));
    }

    private sealed class RecordingStore : ITableStore
    {
        public List<long> Written { get; } = [];
        public List<long> Reads { get; } = [];
        public long Refuse { get; set; } = -1;
        public bool FailReads { get; set; }

        public void CheckPointer(long offset)
        {
            if (offset == Refuse) throw new InvalidDataException("refused");
        }

        public void Read(TableCache.Entry table)
        {
            if (FailReads) throw new IOException("short read");
            Reads.Add(table.Offset);
            table.Data[0] = 0x42;
        }

        public void WriteBack(TableCache.Entry table) => Written.Add(table.Offset);
    }

    [Fact]
    public void A_cache_never_holds_fewer_than_four_tables()
    {
        Assert.Equal(4, new TableCache(16, 1, new RecordingStore()).Capacity);
        using var dir = new TempDir();
        ImageFactory.Create(dir["a.qcow2"], "qcow2", 1 << 20, new CreateOptions { ClusterSize = 512 }).Dispose();
        using var small = (Qcow2Image)ImageFactory.Open(dir["a.qcow2"], new ImageOpenOptions { ReadOnly = true, L2CacheBytes = 512 });
        Assert.Equal(4, small.L2Tables.Capacity);
    }

    [Fact]
    public void Entries_are_big_endian_eight_bytes_each_and_extended_bitmaps_follow_their_entry()
    {
        using var dir = new TempDir();
        using var img = (Qcow2Image)ImageFactory.Create(dir["a.qcow2"], "qcow2", 1 << 20, new CreateOptions { ClusterSize = 4096 });
        var table = new byte[4096];
        img.L2Tables.WriteEntry(table, 2, 0x8000_0000_0001_0000UL);
        Assert.Equal(new byte[] { 0x80, 0, 0, 0, 0, 1, 0, 0 }, table[16..24]);
        Assert.Equal(0x8000_0000_0001_0000UL, img.L2Tables.ReadEntry(table, 2));
        Assert.Equal(0UL, img.L2Tables.ReadEntry(table, 1));

        var extended = new byte[64];
        BinaryPrimitives.WriteUInt64BigEndian(extended.AsSpan(16 + 8), 0x0000_00F0_0000_000FUL);
        Assert.Equal(0xFu, L2TableCache.ReadSubclusterBitmaps(extended, 1, out uint zero));
        Assert.Equal(0xF0u, zero);
    }

    [Fact]
    public void Tables_evicted_from_a_small_cache_reach_the_disk_and_read_back_after_reopening()
    {
        using var dir = new TempDir();
        var path = dir["a.qcow2"];
        // 512-byte clusters: one L2 table maps 64 clusters (32 KiB), so 24 tables' worth of guest data cycles a
        // four-table cache several times, and each write may evict a dirty table.
        const int Tables = 24;
        ImageFactory.Create(path, "qcow2", Tables * 32L << 10, new CreateOptions { ClusterSize = 512 }).Dispose();
        using (var img = (Qcow2Image)ImageFactory.Open(path, new ImageOpenOptions { L2CacheBytes = 512 }))
        {
            Assert.Equal(4, img.L2Tables.Capacity);
            for (int round = 0; round < 2; round++)
                for (int t = 0; t < Tables; t++)
                    img.Write(Offset(t, round), Pattern(t, round));
            for (int t = 0; t < Tables; t++) Assert.Equal(Pattern(t, 1), ReadBack(img, t, 1));
        }
        using (var img = (Qcow2Image)ImageFactory.Open(path, new ImageOpenOptions { ReadOnly = true }))
        {
            for (int t = 0; t < Tables; t++)
            {
                Assert.Equal(Pattern(t, 0), ReadBack(img, t, 0));
                Assert.Equal(Pattern(t, 1), ReadBack(img, t, 1));
            }
            var check = Qcow2Checker.Check(img, CheckRepair.None);
            Assert.Equal(0, check.Corruptions);
            Assert.Equal(0, check.Leaks);
        }

        static long Offset(int table, int round) => ((long)table << 15) + round * 4096L + 512;
        static byte[] Pattern(int table, int round)
        {
            var data = new byte[1024];
            for (int i = 0; i < data.Length; i++) data[i] = (byte)(table * 7 + round * 31 + i);
            return data;
        }
        static byte[] ReadBack(Qcow2Image img, int table, int round)
        {
            var data = new byte[1024];
            img.Read(Offset(table, round), data);
            return data;
        }
    }
}
