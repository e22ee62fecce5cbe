namespace SharpVmm.Block.Qcow2;

/// <summary>
/// QEMU's overlap-check ("cached" mode: every metadata kind but the L2 tables of snapshots): no data or metadata
/// write may land on the header, the active L1 table, an active L2 table, the refcount table, a refcount block, the
/// snapshot table or a snapshot's L1 table. A damaged L2 entry or refcount would otherwise let the guest overwrite
/// the structures that find its data. A write that would is refused, the image is marked corrupt (fatal, as QEMU:
/// later writes fail too) and <see cref="CorruptionDetected"/> tells the owner.
/// </summary>
public sealed partial class Qcow2Image
{
    [Flags]
    internal enum MetaKind : byte { None = 0, ActiveL2 = 1, RefcountBlock = 2, InactiveL1 = 4 }

    /// <summary>Cluster index → kind, for the metadata whose places are not in the header; null until needed.</summary>
    private Dictionary<long, MetaKind>? _metadataClusters;

    /// <summary>Clusters something points at (lazy, built the first time a cluster inside the file is about to be reused).</summary>
    private ulong[]? _inUse;

    private bool _fatal;

    /// <summary>
    /// Raised (on the thread that found it) when a write was refused because the image's metadata is inconsistent:
    /// a message, the host offset and length concerned. QMP's BLOCK_IMAGE_CORRUPTED comes from this.
    /// </summary>
    public event Action<Qcow2Image, string, long, long>? CorruptionDetected;

    /// <summary>The L1 or refcount table or the snapshot list changed: the metadata map is rebuilt on next use.</summary>
    internal void MetadataMoved()
    {
        _metadataClusters = null;
        _inUse = null;
    }

    private Dictionary<long, MetaKind> MetaMap()
    {
        if (_metadataClusters != null) return _metadataClusters;
        var m = new Dictionary<long, MetaKind>();
        foreach (var e in _l1)
        {
            var off = (long)(e & OffsetMask);
            if (off != 0) Add(off >> _clusterBits, MetaKind.ActiveL2);
        }
        foreach (var e in _refcounts.Table)
        {
            var off = (long)(e & OffsetMask);
            if (off != 0) Add(off >> _clusterBits, MetaKind.RefcountBlock);
        }
        foreach (var s in _snapshots)
        {
            var first = s.L1TableOffset >> _clusterBits;
            var last = (s.L1TableOffset + s.L1Size * 8L - 1) >> _clusterBits;
            for (var c = first; s.L1Size > 0 && c <= last && c - first < 1 << 20; c++) Add(c, MetaKind.InactiveL1);
        }
        return _metadataClusters = m;
        void Add(long c, MetaKind k) => m[c] = m.GetValueOrDefault(c) | k;
    }

    /// <summary>What metadata the host range [off, off+len) would overwrite, or null if none (QEMU's names).</summary>
    /// <param name="allowed">Kinds the range may be (its own kind, for a table written back in place).</param>
    internal string? MetadataAt(long off, long len, MetaKind allowed = MetaKind.None)
    {
        if (len <= 0) return null;
        if (off < _clusterSize) return "qcow2_header";
        if (Overlaps(Header.L1TableOffset, _l1.Length * 8L)) return "active L1 table";
        if (Overlaps(Header.RefcountTableOffset, (long)Header.RefcountTableClusters * _clusterSize)) return "refcount table";
        if (Header.SnapshotCount > 0 && Overlaps(Header.SnapshotsOffset, Qcow2Snapshot.TableBytes(_snapshots))) return "snapshot table";
        var m = MetaMap();
        for (var c = off >> _clusterBits; c <= (off + len - 1) >> _clusterBits; c++)
        {
            if (!m.TryGetValue(c, out var k) || (k & ~allowed) == 0) continue;
            k &= ~allowed;
            return k switch
            {
                _ when (k & MetaKind.ActiveL2) != 0 => "active L2 table",
                _ when (k & MetaKind.RefcountBlock) != 0 => "refcount block",
                _ => "inactive L1 table",
            };
        }
        return null;
        bool Overlaps(long s, long l) => l > 0 && off < s + l && s < off + len;
    }

    /// <summary>Refuses a write to [off, off+len) that would land on metadata (QEMU: "Preventing invalid write on metadata").</summary>
    internal void CheckNoOverlap(long off, long len, string what, MetaKind allowed = MetaKind.None)
    {
        var hit = MetadataAt(off, len, allowed);
        if (hit != null) throw Fatal($"Preventing invalid write on metadata (overlaps with {hit}) by a {what} write at 0x{off:x}", off, len);
    }

    /// <summary>Marks the image corrupt, refuses further writes, raises the event; the returned exception goes to the request.</summary>
    private ImageCorruptException Fatal(string what, long off, long len)
    {
        _fatal = true;
        var ex = Corrupt(what);
        CorruptionDetected?.Invoke(this, what, off, len);
        return ex;
    }

    /// <summary>After a fatal corruption nothing more is written, as QEMU makes the node unusable.</summary>
    private void CheckNotFatal()
    {
        if (_fatal)
            throw new ImageCorruptException($"'{Path}' was marked corrupt after an inconsistency was found; no more writes are accepted. Run 'sharpvmm img check {Path}' for details");
    }

    /// <summary>
    /// A cluster about to be handed out has refcount 0: it must not be metadata or hold data something points at,
    /// or the new owner would overwrite it (a damaged refcount is the only way it could read 0).
    /// </summary>
    internal void CheckReallyFree(long c)
    {
        var hit = MetadataAt(c << _clusterBits, _clusterSize);
        if (hit != null) throw Fatal($"cluster 0x{c << _clusterBits:x} has refcount 0 but holds the {hit}; refusing to allocate it", c << _clusterBits, _clusterSize);
        var used = InUseMap();
        if (c < (long)used.Length * 64 && (used[c >> 6] & (1UL << (int)(c & 63))) != 0)
            throw Fatal($"cluster 0x{c << _clusterBits:x} has refcount 0 but an L2 table points at it; refusing to allocate it", c << _clusterBits, _clusterSize);
    }

    internal void ClearInUse(long c)
    {
        var u = _inUse;
        if (u != null && c < (long)u.Length * 64) u[c >> 6] &= ~(1UL << (int)(c & 63));
    }

    /// <summary>Walks the active and the snapshots' tables once and records every cluster they point at.</summary>
    private ulong[] InUseMap()
    {
        if (_inUse != null) return _inUse;
        var n = Math.Max(1, _endCluster);
        var map = new ulong[(n + 63) >> 6];
        void Mark(long c)
        {
            if (c >= 0 && c < n) map[c >> 6] |= 1UL << (int)(c & 63);
        }
        var seenL2 = new HashSet<long>();
        void Walk(ulong[] l1)
        {
            foreach (var l1e in l1)
            {
                var l2 = (long)(l1e & OffsetMask);
                if (l2 == 0 || (l2 & _clusterMask) != 0 || (l2 >> _clusterBits) >= n || !seenL2.Add(l2)) continue;
                Mark(l2 >> _clusterBits);
                var t = new byte[_clusterSize];
                ImageFile.ReadExactly(_file, l2, t, Path, "L2 table");
                for (var i = 0; i < _l2Entries; i++)
                {
                    var e = _l2Tables.ReadEntry(t, i);
                    if ((e & CompressedFlag) != 0)
                    {
                        var (off, len) = CompressedExtent(e);
                        for (var c = off >> _clusterBits; c <= (off + len - 1) >> _clusterBits; c++) Mark(c);
                    }
                    else if ((e & OffsetMask) != 0) Mark((long)(e & OffsetMask) >> _clusterBits);
                }
            }
        }
        Walk(_l1);
        foreach (var s in _snapshots)
        {
            if (s.L1Size <= 0 || s.L1TableOffset <= 0 || s.L1TableOffset + s.L1Size * 8L > (n << _clusterBits)) continue;
            for (var c = s.L1TableOffset >> _clusterBits; c <= (s.L1TableOffset + s.L1Size * 8L - 1) >> _clusterBits; c++) Mark(c);
            Walk(ReadTable(s.L1TableOffset, s.L1Size, "snapshot L1 table"));
        }
        foreach (var e in _refcounts.Table)
            if ((e & OffsetMask) != 0) Mark((long)(e & OffsetMask) >> _clusterBits);
        return _inUse = map;
    }
}
