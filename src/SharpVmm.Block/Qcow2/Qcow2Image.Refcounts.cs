using System.Buffers.Binary;

namespace SharpVmm.Block.Qcow2;

public sealed partial class Qcow2Image
{
    internal ulong GetRefcount(long cluster)
    {
        var rti = cluster >> _rbBits;
        if (rti >= _rt.Length) return 0;
        var off = (long)(_rt[rti] & OffsetMask);
        if (off == 0) return 0;
        return ReadRef(LoadRb(off).Data, (int)(cluster & ((1L << _rbBits) - 1)));
    }

    internal void SetRefcount(long cluster, ulong value)
    {
        if (value > _refMax)
            throw new BlockImageException($"'{Path}': a cluster would need refcount {value}, more than {RefcountBits}-bit refcounts hold; recreate the image with a larger refcount_bits (e.g. -o refcount_bits=16)");
        var rti = cluster >> _rbBits;
        var off = rti < _rt.Length ? (long)(_rt[rti] & OffsetMask) : 0;
        if (off == 0)
        {
            if (value == 0) return;
            EnsureRefcountBlock(rti);
            off = (long)(_rt[rti] & OffsetMask);
        }
        var e = LoadRb(off);
        WriteRef(e.Data, (int)(cluster & ((1L << _rbBits) - 1)), value);
        e.Dirty = true;
        if (value != 0 && cluster >= _endCluster) _endCluster = cluster + 1;
    }

    internal void AddRefcount(long cluster, long delta)
    {
        var v = GetRefcount(cluster);
        if (delta < 0 && v < (ulong)-delta)
            throw Corrupt($"the refcount of cluster 0x{cluster << _cb:x} would drop below zero");
        var nv = (ulong)((long)v + delta);
        SetRefcount(cluster, nv);
        if (nv == 0) ClearInUse(cluster);
        if (nv == 0 && cluster < _freeHint) _freeHint = Math.Max(1, cluster);
    }

    private ulong ReadRef(byte[] b, int i)
    {
        switch (_refOrder)
        {
            case 3: return b[i];
            case 4: return BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(i * 2));
            case 5: return BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(i * 4));
            case 6: return BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(i * 8));
            default:
                var bits = 1 << _refOrder;
                var bit = i * bits;
                return (ulong)((b[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1));
        }
    }

    private void WriteRef(byte[] b, int i, ulong v)
    {
        switch (_refOrder)
        {
            case 3: b[i] = (byte)v; break;
            case 4: BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(i * 2), (ushort)v); break;
            case 5: BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(i * 4), (uint)v); break;
            case 6: BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(i * 8), v); break;
            default:
                var bits = 1 << _refOrder;
                var bit = i * bits;
                var mask = ((1 << bits) - 1) << (bit & 7);
                b[bit >> 3] = (byte)((b[bit >> 3] & ~mask) | (((int)v << (bit & 7)) & mask));
                break;
        }
    }

    private bool IsFree(long c)
    {
        if (ReservedClusters != null && ReservedClusters(c)) return false;
        if (OverlapsFixedMetadata(c << _cb, _cs)) return false;
        // Past the end of the file nothing can be stored, whatever a (possibly damaged) refcount says; trusting it
        // could make the scan walk a huge hostile refcount table.
        if (c >= _endCluster) return true;
        if (GetRefcount(c) != 0) return false;
        CheckReallyFree(c);
        return true;
    }

    /// <summary>
    /// Allocates up to <paramref name="wanted"/> contiguous free clusters with refcount 1 and returns the host offset
    /// of the first; <paramref name="got"/> says how many (at least one).
    /// </summary>
    internal long AllocateRun(int wanted, out int got)
    {
        while (true)
        {
            var c = Math.Max(1, _freeHint);
            // Ranges without a refcount block read as refcount 0, so the scan needs no special case for them.
            while (!IsFree(c)) c++;
            var r = c >> _rbBits;
            if (r >= _rt.Length || (_rt[r] & OffsetMask) == 0)
            {
                // The block for this range goes in the range's first free cluster, so it describes itself.
                CreateRefcountBlock(r, c);
                continue;
            }
            got = 1;
            while (got < wanted && ((c + got) >> _rbBits) == r && IsFree(c + got)) got++;
            for (var i = 0; i < got; i++) SetRefcount(c + i, 1);
            _freeHint = c + got;
            _endCluster = Math.Max(_endCluster, c + got);
            return c << _cb;
        }
    }

    private void EnsureRefcountBlock(long rti)
    {
        while (rti >= _rt.Length || (_rt[rti] & OffsetMask) == 0)
        {
            if (rti >= _rt.Length) { GrowRefcountTable(rti); continue; }
            // Prefer a cluster inside the block's own range; otherwise anywhere free.
            var first = rti << _rbBits;
            var c = Math.Max(1, first);
            var end = (rti + 1) << _rbBits;
            while (c < end && !IsFree(c)) c++;
            if (c < end) CreateRefcountBlock(rti, c);
            else
            {
                var where = AllocateRun(1, out _);
                InstallRefcountBlock(rti, where, selfIndex: -1);
            }
        }
    }

    private void CreateRefcountBlock(long rti, long cluster)
    {
        if (rti >= _rt.Length) { GrowRefcountTable(rti); return; }
        InstallRefcountBlock(rti, cluster << _cb, (int)(cluster & ((1L << _rbBits) - 1)));
    }

    private void InstallRefcountBlock(long rti, long off, int selfIndex)
    {
        var e = _rbCache.Insert(off, WriteBackRb);
        Array.Clear(e.Data);
        if (selfIndex >= 0) WriteRef(e.Data, selfIndex, 1);
        CheckNoOverlap(off, _cs, "refcount block");
        // The block must be on disk before the table entry that points at it.
        RandomAccess.Write(_fh, e.Data, off);
        Sync();
        e.Dirty = false;
        _rt[rti] = (ulong)off;
        MetadataMoved();
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, (ulong)off);
        RandomAccess.Write(_fh, b, Header.RefcountTableOffset + rti * 8);
        _endCluster = Math.Max(_endCluster, (off >> _cb) + 1);
    }

    /// <summary>
    /// Moves the refcount table to a larger one at the end of the image, together with the refcount blocks that
    /// describe the new table itself; the header switches over in one sector write after both are on disk.
    /// </summary>
    private void GrowRefcountTable(long minIndex)
    {
        var perCluster = _cs / 8;
        long entries = Math.Max(minIndex + 1, _rt.Length * 2L);
        while (true)
        {
            entries = (entries + perCluster - 1) / perCluster * perCluster;
            var tableClusters = entries / perCluster;
            if (tableClusters * _cs > (8L << 20) + _cs)
                throw new BlockImageException($"'{Path}': the refcount table would exceed 8 MiB; the image is too large for its cluster size and refcount width");
            var newRt = new ulong[entries];
            Array.Copy(_rt, newRt, _rt.Length);
            var t = _endCluster;
            var next = t + tableClusters;
            var blocks = new List<long>();
            var overflow = false;
            for (var c = t; c < next; c++)
            {
                var rti = c >> _rbBits;
                if (rti >= entries) { overflow = true; break; }
                if ((newRt[rti] & OffsetMask) == 0)
                {
                    newRt[rti] = (ulong)(next << _cb);
                    blocks.Add(next);
                    next++;
                }
            }
            if (overflow) { entries *= 2; continue; }

            var oldOffset = Header.RefcountTableOffset;
            var oldClusters = Header.RefcountTableClusters;
            _rt = newRt;
            MetadataMoved();
            foreach (var b in blocks)
            {
                var e = _rbCache.Insert(b << _cb, WriteBackRb);
                Array.Clear(e.Data);
                e.Dirty = true;
            }
            _endCluster = Math.Max(_endCluster, next);
            for (var c = t; c < next; c++) SetRefcount(c, 1);
            _rbCache.WriteDirty(WriteBackRb);
            var buf = new byte[tableClusters * _cs];
            for (var i = 0; i < entries; i++) BinaryPrimitives.WriteUInt64BigEndian(buf.AsSpan(i * 8), newRt[i]);
            RandomAccess.Write(_fh, buf, t << _cb);
            Sync();
            Span<byte> hdr = stackalloc byte[12];
            BinaryPrimitives.WriteInt64BigEndian(hdr, t << _cb);
            BinaryPrimitives.WriteInt32BigEndian(hdr[8..], (int)tableClusters);
            RandomAccess.Write(_fh, hdr, 48);
            Sync();
            Header.RefcountTableOffset = t << _cb;
            Header.RefcountTableClusters = (int)tableClusters;
            for (var c = oldOffset >> _cb; c < (oldOffset >> _cb) + oldClusters; c++) AddRefcount(c, -1);
            return;
        }
    }

    /// <summary>
    /// Writes cached metadata in crash-safe order: refcount blocks, then L2 tables, then the deferred releases
    /// (which may only reach the disk after the tables that stopped pointing at those clusters).
    /// </summary>
    internal void FlushMetadata(bool sync)
    {
        ExtendToMapped();
        var synced = false;
        if (_l2Cache.HasDirty)
        {
            _rbCache.WriteDirty(WriteBackRb);
            Sync();
            _l2Cache.WriteDirty(WriteBackL2);
            synced = false;
        }
        if (_pendingFrees.Count > 0)
        {
            Sync();
            foreach (var c in _pendingFrees) AddRefcount(c, -1);
            _pendingFrees.Clear();
            _compressedCursor = 0;
            _czEntry = -1;
        }
        if (_rbCache.HasDirty) { _rbCache.WriteDirty(WriteBackRb); synced = false; }
        if (sync && !synced) Sync();
    }

    /// <summary>Drops cached tables after metadata was rewritten behind the caches' back (snapshot apply, repair).</summary>
    internal void DropCaches()
    {
        _l2Cache.Clear();
        _rbCache.Clear();
        _czEntry = -1;
        MetadataMoved();
    }

    internal void ReloadRefcountTable()
    {
        _rt = ReadTable(Header.RefcountTableOffset, Header.RefcountTableClusters * (_cs / 8), "refcount table");
        MetadataMoved();
    }
}
