namespace SharpVmm.Block.Qcow2;

public sealed partial class Qcow2Image
{
    /// <summary>qemu-img's preallocation: every guest cluster gets its L2 entry and host cluster up front.</summary>
    internal void Preallocate(Preallocation mode) => ExclusiveMetadata(() =>
    {
        var clusters = (Size + _clusterMask) >> _clusterBits;
        var ci = 0L;
        while (ci < clusters)
        {
            var t = GetL2ForWrite(ci, out var l2i);
            if (_l2Tables.ReadEntry(t.Data, l2i) != 0) { ci++; continue; }
            var k = (int)Math.Min(clusters - ci, _l2Entries - l2i);
            var host = AllocateRun(k, out var got);
            t = GetL2ForWrite(ci, out l2i);
            for (var j = 0; j < got; j++) _l2Tables.WriteEntry(t.Data, l2i + j, (ulong)(host + (long)j * _clusterSize) | Copied);
            t.Dirty = true;
            ImageFile.Preallocate(_file, host, (long)got * _clusterSize, mode);
            ci += got;
        }
        FlushMetadata(sync: true);
        if (RandomAccess.GetLength(_file) < _endCluster << _clusterBits) RandomAccess.SetLength(_file, _endCluster << _clusterBits);
    });

    /// <summary>Closes without touching the file (used when an open fails half-way).</summary>
    internal void DisposeWithoutFlush()
    {
        if (_disposed) return;
        _disposed = true;
        _file.Dispose();
        Backing?.Dispose();
        _allocationLock.Dispose();
    }
}
