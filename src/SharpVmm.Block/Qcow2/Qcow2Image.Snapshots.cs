using System.Buffers.Binary;

namespace SharpVmm.Block.Qcow2;

public sealed partial class Qcow2Image
{
    /// <summary>Allocates exactly n contiguous clusters (for tables that must be contiguous).</summary>
    internal long AllocateContiguous(long n)
    {
        var firstSkipped = long.MaxValue;
        while (true)
        {
            var off = AllocateRun((int)Math.Min(n, int.MaxValue), out var got);
            if (got == n)
            {
                if (firstSkipped < _refcounts.FreeHint) _refcounts.FreeHint = firstSkipped;
                return off;
            }
            // Too short: give it back and look further on.
            for (var i = 0; i < got; i++) SetRefcount((off >> _clusterBits) + i, 0);
            firstSkipped = Math.Min(firstSkipped, off >> _clusterBits);
            _refcounts.FreeHint = (off >> _clusterBits) + got + 1;
        }
    }

    internal ulong[] ReadL1(long offset, int size) => ReadTable(offset, size, "snapshot L1 table");

    private void WriteL1Table(long offset, ulong[] l1, int totalEntries)
    {
        var buf = new byte[((long)totalEntries * 8 + _clusterMask) & ~_clusterMask];
        for (var i = 0; i < l1.Length; i++) BinaryPrimitives.WriteUInt64BigEndian(buf.AsSpan(i * 8), l1[i]);
        RandomAccess.Write(_file, buf.AsSpan(0, totalEntries * 8), offset);
    }

    /// <summary>Adds delta to the refcount of every cluster an L1 table reaches: its L2 tables and their clusters.</summary>
    internal void UpdateTreeRefcounts(ulong[] l1, long delta)
    {
        var copy = new byte[_clusterSize];
        foreach (var l1e in l1)
        {
            var l2 = (long)(l1e & OffsetMask);
            if (l2 == 0) continue;
            _l2Tables.Load(l2).Data.AsSpan(0, _clusterSize).CopyTo(copy);
            for (var i = 0; i < _l2Entries; i++)
            {
                var e = _l2Tables.ReadEntry(copy, i);
                if ((e & CompressedFlag) != 0)
                {
                    var (off, len) = CompressedExtent(e);
                    for (var c = off >> _clusterBits; c <= (off + len - 1) >> _clusterBits; c++) AddRefcount(c, delta);
                }
                else if ((e & OffsetMask) != 0) AddRefcount((long)(e & OffsetMask) >> _clusterBits, delta);
            }
            AddRefcount(l2 >> _clusterBits, delta);
        }
    }

    /// <summary>Sets the COPIED flag in the active tables exactly where the refcount is 1, as the spec requires.</summary>
    internal int FixCopiedFlags()
    {
        var changed = 0;
        var l1Changed = false;
        for (var i = 0; i < _l1.Length; i++)
        {
            var l2 = (long)(_l1[i] & OffsetMask);
            if (l2 == 0) continue;
            var want = GetRefcount(l2 >> _clusterBits) == 1 ? _l1[i] | Copied : _l1[i] & ~Copied;
            if (want != _l1[i]) { _l1[i] = want; l1Changed = true; changed++; MetadataMoved(); }
            var t = _l2Tables.Load(l2);
            for (var j = 0; j < _l2Entries; j++)
            {
                var e = _l2Tables.ReadEntry(t.Data, j);
                ulong w;
                if ((e & CompressedFlag) != 0) w = e & ~Copied;
                else if ((e & OffsetMask) == 0) w = e & ~Copied;
                else w = GetRefcount((long)(e & OffsetMask) >> _clusterBits) == 1 ? e | Copied : e & ~Copied;
                if (w != e)
                {
                    _l2Tables.WriteEntry(t.Data, j, w);
                    t.Dirty = true;
                    changed++;
                }
            }
        }
        if (l1Changed) WriteL1Table(Header.L1TableOffset, _l1, _l1.Length);
        return changed;
    }

    private Qcow2Snapshot? FindSnapshot(string nameOrId)
    {
        foreach (var s in _snapshots) if (s.Id == nameOrId) return s;
        foreach (var s in _snapshots) if (s.Name == nameOrId) return s;
        return null;
    }

    private void ExclusiveMetadata(Action a)
    {
        ImageFile.CheckWritable(this);
        _allocationLock.EnterWriteLock();
        try { lock (_lock) a(); }
        finally { _allocationLock.ExitWriteLock(); }
    }

    private void WriteSnapshotTable(List<Qcow2Snapshot> list)
    {
        var bytes = Qcow2Snapshot.Serialize(list);
        long off = 0;
        if (list.Count > 0)
        {
            off = AllocateContiguous((bytes.Length + _clusterMask) >> _clusterBits);
            FlushMetadata(sync: false);
            RandomAccess.Write(_file, bytes, off);
            Sync();
        }
        var oldOff = Header.SnapshotsOffset;
        var oldClusters = Header.SnapshotCount > 0 ? (Qcow2Snapshot.TableBytes(_snapshots) + _clusterMask) >> _clusterBits : 0;
        Span<byte> hdr = stackalloc byte[12];
        BinaryPrimitives.WriteInt32BigEndian(hdr, list.Count);
        BinaryPrimitives.WriteInt64BigEndian(hdr[4..], off);
        RandomAccess.Write(_file, hdr, 60);
        Sync();
        Header.SnapshotCount = list.Count;
        Header.SnapshotsOffset = off;
        _snapshots = list;
        MetadataMoved();
        for (var c = 0L; c < oldClusters; c++) AddRefcount((oldOff >> _clusterBits) + c, -1);
    }

    public void CreateSnapshot(string name) => ExclusiveMetadata(() =>
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("a snapshot needs a name");
        if (FindSnapshot(name) != null) throw new BlockImageException($"'{Path}' already has a snapshot named '{name}'");
        FlushMetadata(sync: true);
        UpdateTreeRefcounts(_l1, +1);
        long l1Off = 0;
        if (_l1.Length > 0)
        {
            l1Off = AllocateContiguous(((long)_l1.Length * 8 + _clusterMask) >> _clusterBits);
            var copy = new ulong[_l1.Length];
            for (var i = 0; i < copy.Length; i++) copy[i] = _l1[i] & ~Copied;
            WriteL1Table(l1Off, copy, copy.Length);
        }
        FixCopiedFlags();
        FlushMetadata(sync: true);
        var id = 1;
        foreach (var s in _snapshots) if (int.TryParse(s.Id, out var n) && n >= id) id = n + 1;
        var now = DateTimeOffset.UtcNow;
        var snap = new Qcow2Snapshot
        {
            Id = id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Name = name,
            L1TableOffset = l1Off,
            L1Size = _l1.Length,
            DateSeconds = (uint)now.ToUnixTimeSeconds(),
            DateNanoseconds = (uint)(now.Ticks % TimeSpan.TicksPerSecond * 100),
            DiskSize = Size,
        };
        var list = new List<Qcow2Snapshot>(_snapshots) { snap };
        WriteSnapshotTable(list);
        FlushMetadata(sync: true);
    });

    public void ApplySnapshot(string nameOrId) => ExclusiveMetadata(() =>
    {
        var s = FindSnapshot(nameOrId) ?? throw new BlockImageException($"'{Path}' has no snapshot '{nameOrId}' (see 'sharpvmm img snapshot -l')");
        FlushMetadata(sync: true);
        var snapL1 = ReadL1(s.L1TableOffset, s.L1Size);
        UpdateTreeRefcounts(snapL1, +1);
        FlushMetadata(sync: true);
        var old = _l1;
        var newL1 = new ulong[Math.Max(snapL1.Length, old.Length)];
        Array.Copy(snapL1, newL1, snapL1.Length);
        if (newL1.Length > old.Length || Header.L1TableOffset == 0)
        {
            var off = AllocateContiguous(((long)newL1.Length * 8 + _clusterMask) >> _clusterBits);
            FlushMetadata(sync: false);
            WriteL1Table(off, newL1, newL1.Length);
            Sync();
            SwitchL1(off, newL1);
        }
        else
        {
            WriteL1Table(Header.L1TableOffset, newL1, newL1.Length);
            Sync();
            _l1 = newL1;
            MetadataMoved();
        }
        if (s.DiskSize != Size)
        {
            WriteHeaderField(24, (ulong)s.DiskSize);
            Sync();
            Header.Size = s.DiskSize;
            Volatile.Write(ref _size, s.DiskSize);
        }
        UpdateTreeRefcounts(old, -1);
        FixCopiedFlags();
        FlushMetadata(sync: true);
    });

    public void DeleteSnapshot(string nameOrId) => ExclusiveMetadata(() =>
    {
        var s = FindSnapshot(nameOrId) ?? throw new BlockImageException($"'{Path}' has no snapshot '{nameOrId}' (see 'sharpvmm img snapshot -l')");
        FlushMetadata(sync: true);
        var list = new List<Qcow2Snapshot>(_snapshots);
        list.Remove(s);
        WriteSnapshotTable(list);
        var snapL1 = ReadL1(s.L1TableOffset, s.L1Size);
        UpdateTreeRefcounts(snapL1, -1);
        var l1Clusters = ((long)s.L1Size * 8 + _clusterMask) >> _clusterBits;
        for (var c = 0L; c < l1Clusters; c++) AddRefcount((s.L1TableOffset >> _clusterBits) + c, -1);
        FixCopiedFlags();
        FlushMetadata(sync: true);
    });

    /// <summary>Points the header at a new active L1 table (already on disk) and releases the old one.</summary>
    private void SwitchL1(long offset, ulong[] l1)
    {
        Span<byte> hdr = stackalloc byte[12];
        BinaryPrimitives.WriteInt32BigEndian(hdr, l1.Length);
        BinaryPrimitives.WriteInt64BigEndian(hdr[4..], offset);
        RandomAccess.Write(_file, hdr, 36);
        Sync();
        var oldOff = Header.L1TableOffset;
        var oldClusters = ((long)_l1.Length * 8 + _clusterMask) >> _clusterBits;
        Header.L1TableOffset = offset;
        Header.L1Size = l1.Length;
        _l1 = l1;
        MetadataMoved();
        if (oldOff != 0)
            for (var c = 0L; c < oldClusters; c++) AddRefcount((oldOff >> _clusterBits) + c, -1);
    }

    public void Resize(long newSize, bool allowShrink)
    {
        if (newSize < 0) throw new ArgumentOutOfRangeException(nameof(newSize));
        ExclusiveMetadata(() =>
        {
            if (_snapshots.Count > 0)
                throw new BlockImageException($"'{Path}' has internal snapshots; an image with snapshots cannot be resized (delete them first)");
            if (newSize < Size)
            {
                if (!allowShrink) throw new BlockImageException($"'{Path}': shrinking would lose data; pass --shrink to allow it");
                var firstGone = (newSize + _clusterMask) >> _clusterBits;
                var lastCluster = (Size + _clusterMask) >> _clusterBits;
                for (var ci = firstGone; ci < lastCluster; ci++)
                {
                    var l1i = ci >> _l2Bits;
                    if (l1i >= _l1.Length || (_l1[l1i] & OffsetMask) == 0) { ci = ((l1i + 1) << _l2Bits) - 1; continue; }
                    var t = GetL2ForWrite(ci, out var l2i);
                    var old = _l2Tables.ReadEntry(t.Data, l2i);
                    if (old == 0) continue;
                    _l2Tables.WriteEntry(t.Data, l2i, 0);
                    t.Dirty = true;
                    FreeDeferred(old);
                }
                FlushMetadata(sync: true);
            }
            var needed = (int)((newSize + ((long)_clusterSize << _l2Bits) - 1) >> (_clusterBits + _l2Bits));
            if (needed > _l1.Length)
            {
                var newL1 = new ulong[needed];
                Array.Copy(_l1, newL1, _l1.Length);
                var off = AllocateContiguous(((long)needed * 8 + _clusterMask) >> _clusterBits);
                FlushMetadata(sync: false);
                WriteL1Table(off, newL1, newL1.Length);
                Sync();
                SwitchL1(off, newL1);
                FlushMetadata(sync: true);
            }
            WriteHeaderField(24, (ulong)newSize);
            Sync();
            Header.Size = newSize;
            Volatile.Write(ref _size, newSize);
        });
    }

    /// <summary>Rewrites cluster 0 (after changing the backing file name or format): it must still fit one cluster.</summary>
    internal void RewriteHeader()
    {
        var bytes = Header.Serialize();
        var buf = new byte[_clusterSize];
        bytes.CopyTo(buf, 0);
        RandomAccess.Write(_file, buf, 0);
        Sync();
    }

    /// <summary>Changes the recorded backing file (rebase, commit): metadata only, data are not touched.</summary>
    public void SetBackingFile(string? file, string? format) => ExclusiveMetadata(() =>
    {
        FlushMetadata(sync: true);
        Header.BackingFile = string.IsNullOrEmpty(file) ? null : file;
        Header.BackingFormat = string.IsNullOrEmpty(file) ? null : format;
        RewriteHeader();
    });

    internal void ReplaceBacking(IBlockImage? backing)
    {
        var old = Backing;
        Backing = backing;
        if (!ReferenceEquals(old, backing)) old?.Dispose();
    }
}
