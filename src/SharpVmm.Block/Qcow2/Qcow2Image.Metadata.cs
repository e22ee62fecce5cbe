namespace SharpVmm.Block.Qcow2;

public sealed partial class Qcow2Image
{
    internal ulong GetRefcount(long cluster) => _refcounts.Get(cluster);
    internal void SetRefcount(long cluster, ulong value) => _refcounts.Set(cluster, value);
    internal void AddRefcount(long cluster, long delta) => _refcounts.Add(cluster, delta);

    /// <inheritdoc cref="Qcow2Refcounts.AllocateRun"/>
    internal long AllocateRun(int wanted, out int got) => _refcounts.AllocateRun(wanted, out got);

    /// <summary>
    /// Writes cached metadata in crash-safe order: refcount blocks, then L2 tables, then the deferred releases
    /// (which may only reach the disk after the tables that stopped pointing at those clusters).
    /// </summary>
    internal void FlushMetadata(bool sync)
    {
        ExtendToMapped();
        var synced = false;
        if (_l2Tables.HasDirty)
        {
            _refcounts.WriteDirtyBlocks();
            Sync();
            _l2Tables.WriteDirty();
            synced = false;
        }
        if (_pendingFrees.Count > 0)
        {
            Sync();
            foreach (var c in _pendingFrees) AddRefcount(c, -1);
            _pendingFrees.Clear();
            _compressedCursor = 0;
            _decompressedEntry = -1;
        }
        if (_refcounts.HasDirtyBlocks) { _refcounts.WriteDirtyBlocks(); synced = false; }
        if (sync && !synced) Sync();
    }

    /// <summary>Drops cached tables after metadata was rewritten behind the caches' back (snapshot apply, repair).</summary>
    internal void DropCaches()
    {
        _l2Tables.Clear();
        _refcounts.DropCache();
        _decompressedEntry = -1;
        MetadataMoved();
    }

    internal void ReloadRefcountTable()
    {
        _refcounts.Reload(ReadTable(Header.RefcountTableOffset, Header.RefcountTableClusters * (_clusterSize / 8), "refcount table"));
        MetadataMoved();
    }
}
