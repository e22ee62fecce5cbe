using System.Buffers.Binary;

namespace SharpVmm.Block.Qcow2;

/// <summary>
/// The refcounts of one qcow2 image: the refcount table (host offsets of refcount blocks), a write-back cache of the
/// blocks, and the cluster allocator that reads them. A new refcount block goes into the first free cluster of the
/// range it describes, so it counts itself; a block's contents reach the disk before the table entry that points at
/// it, and a larger table before the header that names it. Callers hold the image's metadata lock.
/// </summary>
internal sealed class Qcow2Refcounts : ITableStore
{
    private readonly Qcow2Image _image;
    private readonly int _clusterBits;
    private readonly int _clusterSize;
    private readonly TableCache _blocks;
    private ulong[] _table;

    public Qcow2Refcounts(Qcow2Image image, ulong[] table)
    {
        _image = image;
        _clusterBits = image.ClusterBits;
        _clusterSize = 1 << _clusterBits;
        Width = new RefcountWidth(image.Header.RefcountOrder);
        BlockBits = Width.EntriesPerBlockBits(_clusterBits);
        _table = table;
        _blocks = new TableCache(_clusterSize, Math.Max(16, Math.Min(1024, (4 << 20) / _clusterSize)), this);
    }

    public RefcountWidth Width { get; }

    /// <summary>log2 of the clusters one refcount block describes.</summary>
    public int BlockBits { get; }

    /// <summary>The refcount table as loaded (entries are host offsets of refcount blocks, 0 = none).</summary>
    public ulong[] Table => _table;

    /// <summary>Where the next search for a free cluster starts (never 0: cluster 0 is the header).</summary>
    public long FreeHint { get; set; } = 1;

    public bool HasDirtyBlocks => _blocks.HasDirty;

    public ulong Get(long cluster)
    {
        var rti = cluster >> BlockBits;
        if (rti >= _table.Length) return 0;
        var off = (long)(_table[rti] & Qcow2Image.OffsetMask);
        if (off == 0) return 0;
        return Width.Read(_blocks.Load(off).Data, IndexInBlock(cluster));
    }

    public void Set(long cluster, ulong value)
    {
        if (value > Width.Max)
            throw new BlockImageException($"'{_image.Path}': a cluster would need refcount {value}, more than {Width.Bits}-bit refcounts hold; recreate the image with a larger refcount_bits (e.g. -o refcount_bits=16)");
        var rti = cluster >> BlockBits;
        var off = rti < _table.Length ? (long)(_table[rti] & Qcow2Image.OffsetMask) : 0;
        if (off == 0)
        {
            if (value == 0) return;
            EnsureBlock(rti);
            off = (long)(_table[rti] & Qcow2Image.OffsetMask);
        }
        var e = _blocks.Load(off);
        Width.Write(e.Data, IndexInBlock(cluster), value);
        e.Dirty = true;
        if (value != 0 && cluster >= _image.EndCluster) _image.EndCluster = cluster + 1;
    }

    public void Add(long cluster, long delta)
    {
        var v = Get(cluster);
        if (delta < 0 && v < (ulong)-delta)
            throw _image.Corrupt($"the refcount of cluster 0x{cluster << _clusterBits:x} would drop below zero");
        var nv = (ulong)((long)v + delta);
        Set(cluster, nv);
        if (nv == 0) _image.ClearInUse(cluster);
        if (nv == 0 && cluster < FreeHint) FreeHint = Math.Max(1, cluster);
    }

    private int IndexInBlock(long cluster) => (int)(cluster & ((1L << BlockBits) - 1));

    private bool IsFree(long c)
    {
        if (_image.ReservedClusters != null && _image.ReservedClusters(c)) return false;
        if (_image.OverlapsFixedMetadata(c << _clusterBits, _clusterSize)) return false;
        // Past the end of the file nothing can be stored, whatever a (possibly damaged) refcount says; trusting it
        // could make the scan walk a huge hostile refcount table.
        if (c >= _image.EndCluster) return true;
        if (Get(c) != 0) return false;
        _image.CheckReallyFree(c);
        return true;
    }

    /// <summary>
    /// Allocates up to <paramref name="wanted"/> contiguous free clusters with refcount 1 and returns the host offset
    /// of the first; <paramref name="got"/> says how many (at least one).
    /// </summary>
    public long AllocateRun(int wanted, out int got)
    {
        while (true)
        {
            var c = Math.Max(1, FreeHint);
            // Ranges without a refcount block read as refcount 0, so the scan needs no special case for them.
            while (!IsFree(c)) c++;
            var r = c >> BlockBits;
            if (r >= _table.Length || (_table[r] & Qcow2Image.OffsetMask) == 0)
            {
                // The block for this range goes in the range's first free cluster, so it describes itself.
                CreateBlock(r, c);
                continue;
            }
            got = 1;
            while (got < wanted && ((c + got) >> BlockBits) == r && IsFree(c + got)) got++;
            for (var i = 0; i < got; i++) Set(c + i, 1);
            FreeHint = c + got;
            _image.EndCluster = Math.Max(_image.EndCluster, c + got);
            return c << _clusterBits;
        }
    }

    private void EnsureBlock(long rti)
    {
        while (rti >= _table.Length || (_table[rti] & Qcow2Image.OffsetMask) == 0)
        {
            if (rti >= _table.Length) { GrowTable(rti); continue; }
            // Prefer a cluster inside the block's own range; otherwise anywhere free.
            var first = rti << BlockBits;
            var c = Math.Max(1, first);
            var end = (rti + 1) << BlockBits;
            while (c < end && !IsFree(c)) c++;
            if (c < end) CreateBlock(rti, c);
            else
            {
                var where = AllocateRun(1, out _);
                InstallBlock(rti, where, selfIndex: -1);
            }
        }
    }

    private void CreateBlock(long rti, long cluster)
    {
        if (rti >= _table.Length) { GrowTable(rti); return; }
        InstallBlock(rti, cluster << _clusterBits, IndexInBlock(cluster));
    }

    private void InstallBlock(long rti, long off, int selfIndex)
    {
        var e = _blocks.Insert(off);
        Array.Clear(e.Data);
        if (selfIndex >= 0) Width.Write(e.Data, selfIndex, 1);
        _image.CheckNoOverlap(off, _clusterSize, "refcount block");
        // The block must be on disk before the table entry that points at it.
        RandomAccess.Write(_image.Handle, e.Data, off);
        _image.Sync();
        e.Dirty = false;
        _table[rti] = (ulong)off;
        _image.MetadataMoved();
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, (ulong)off);
        RandomAccess.Write(_image.Handle, b, _image.Header.RefcountTableOffset + rti * 8);
        _image.EndCluster = Math.Max(_image.EndCluster, (off >> _clusterBits) + 1);
    }

    /// <summary>
    /// Moves the refcount table to a larger one at the end of the image, together with the refcount blocks that
    /// describe the new table itself; the header switches over in one sector write after both are on disk.
    /// </summary>
    private void GrowTable(long minIndex)
    {
        var header = _image.Header;
        var perCluster = _clusterSize / 8;
        long entries = Math.Max(minIndex + 1, _table.Length * 2L);
        while (true)
        {
            entries = (entries + perCluster - 1) / perCluster * perCluster;
            var tableClusters = entries / perCluster;
            if (tableClusters * _clusterSize > (8L << 20) + _clusterSize)
                throw new BlockImageException($"'{_image.Path}': the refcount table would exceed 8 MiB; the image is too large for its cluster size and refcount width");
            var newTable = new ulong[entries];
            Array.Copy(_table, newTable, _table.Length);
            var t = _image.EndCluster;
            var next = t + tableClusters;
            var blocks = new List<long>();
            var overflow = false;
            for (var c = t; c < next; c++)
            {
                var rti = c >> BlockBits;
                if (rti >= entries) { overflow = true; break; }
                if ((newTable[rti] & Qcow2Image.OffsetMask) == 0)
                {
                    newTable[rti] = (ulong)(next << _clusterBits);
                    blocks.Add(next);
                    next++;
                }
            }
            if (overflow) { entries *= 2; continue; }

            var oldOffset = header.RefcountTableOffset;
            var oldClusters = header.RefcountTableClusters;
            _table = newTable;
            _image.MetadataMoved();
            foreach (var b in blocks)
            {
                var e = _blocks.Insert(b << _clusterBits);
                Array.Clear(e.Data);
                e.Dirty = true;
            }
            _image.EndCluster = Math.Max(_image.EndCluster, next);
            for (var c = t; c < next; c++) Set(c, 1);
            _blocks.WriteDirty();
            var buf = new byte[tableClusters * _clusterSize];
            for (var i = 0; i < entries; i++) BinaryPrimitives.WriteUInt64BigEndian(buf.AsSpan(i * 8), newTable[i]);
            RandomAccess.Write(_image.Handle, buf, t << _clusterBits);
            _image.Sync();
            Span<byte> hdr = stackalloc byte[12];
            BinaryPrimitives.WriteInt64BigEndian(hdr, t << _clusterBits);
            BinaryPrimitives.WriteInt32BigEndian(hdr[8..], (int)tableClusters);
            RandomAccess.Write(_image.Handle, hdr, 48);
            _image.Sync();
            header.RefcountTableOffset = t << _clusterBits;
            header.RefcountTableClusters = (int)tableClusters;
            for (var c = oldOffset >> _clusterBits; c < (oldOffset >> _clusterBits) + oldClusters; c++) Add(c, -1);
            return;
        }
    }

    void ITableStore.CheckPointer(long offset) => _image.ValidateTablePointer(offset, "refcount block");

    void ITableStore.Read(TableCache.Entry block) => ImageFile.ReadExactly(_image.Handle, block.Offset, block.Data, _image.Path, "refcount block");

    void ITableStore.WriteBack(TableCache.Entry block)
    {
        _image.CheckNoOverlap(block.Offset, _clusterSize, "refcount block", Qcow2Image.MetaKind.RefcountBlock);
        RandomAccess.Write(_image.Handle, block.Data, block.Offset);
    }

    /// <summary>Writes every cached block that changed.</summary>
    public void WriteDirtyBlocks() => _blocks.WriteDirty();

    /// <summary>Forgets cached blocks after metadata was rewritten behind the cache's back (snapshot apply, repair).</summary>
    public void DropCache() => _blocks.Clear();

    /// <summary>Takes the table as the header now names it (after a repair rewrote it).</summary>
    public void Reload(ulong[] table) => _table = table;
}
