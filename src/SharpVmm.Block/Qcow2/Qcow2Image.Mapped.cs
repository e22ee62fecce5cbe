namespace SharpVmm.Block.Qcow2;

public sealed partial class Qcow2Image
{
    // End of the host space handed out by MapForWrite; the file is extended to it at the next flush.
    private long _mappedEnd;

    /// <summary>
    /// Convert's split write, first half: makes the guest range starting at <paramref name="offset"/> writable in place
    /// and returns the host offset its bytes go to, for the first <paramref name="mapped"/> bytes (host-contiguous, at
    /// most <paramref name="length"/>). Clusters this image owns are returned as they are; whole clusters that read as
    /// zero (unallocated with no backing data, or zero clusters) get fresh space, mapped in L2 at once. Returns -1 when
    /// the range needs the general path (<see cref="Write"/>): a partial cluster over old data, a shared or compressed
    /// cluster, or data in a backing file.
    /// The caller must then write exactly that host range with <see cref="WriteMapped"/> before the next
    /// <see cref="Flush"/>; until it does, the guest range reads as whatever the new space holds (zeroes in a file that
    /// only grows), which is why only a writer that owns the image outright (convert into its new target) may use this.
    /// Allocation runs here, in the caller's order, so clusters are laid out in guest order when the caller goes in
    /// guest order, while the data writes themselves can run in parallel.
    /// </summary>
    internal long MapForWrite(long offset, long length, out long mapped)
    {
        ImageFile.CheckWritable(this);
        ImageFile.CheckRange(this, offset, length);
        mapped = 0;
        if (length == 0) return -1;
        _allocationLock.EnterWriteLock();
        try
        {
            lock (_lock) return MapLocked(offset, length, out mapped);
        }
        finally { _allocationLock.ExitWriteLock(); }
    }

    private long MapLocked(long offset, long length, out long mapped)
    {
        mapped = 0;
        var kind = Lookup(offset, length, out var host, out var run, out _, out var copied);
        if (kind == Kind.Data && copied)
        {
            CheckDataWrite(host, run);
            mapped = run;
            return host;
        }
        if ((offset & _clusterMask) != 0) return -1;
        var ci = offset >> _clusterBits;
        // Only whole clusters: the last one may be short only where the image ends.
        var end = offset + length;
        var wholeEnd = end == Size ? end : end & ~_clusterMask;
        var clusters = (int)Math.Min((wholeEnd - offset + _clusterMask) >> _clusterBits, _l2Entries - (ci & (_l2Entries - 1)));
        if (clusters <= 0) return -1;
        MarkDirtyIfLazy();
        var t = GetL2ForWrite(ci, out var l2i);
        var k = 0;
        while (k < clusters)
        {
            var e = _l2Tables.ReadEntry(t.Data, l2i + k);
            if ((e & CompressedFlag) != 0 || !ReadsAsZero(ci + k, e)) break;
            k++;
        }
        if (k == 0) return -1;
        var hostStart = AllocateRun(k, out var got);
        t = GetL2ForWrite(ci, out l2i);
        for (var j = 0; j < got; j++)
        {
            var old = _l2Tables.ReadEntry(t.Data, l2i + j);
            _l2Tables.WriteEntry(t.Data, l2i + j, (ulong)(hostStart + ((long)j << _clusterBits)) | Copied);
            FreeDeferred(old);
        }
        t.Dirty = true;
        var hostEnd = hostStart + ((long)got << _clusterBits);
        if (hostEnd > _mappedEnd) _mappedEnd = hostEnd;
        mapped = Math.Min(length, (long)got << _clusterBits);
        return hostStart;
    }

    /// <summary>Convert's split write, second half: stores data at a host range <see cref="MapForWrite"/> returned. Lock-free.</summary>
    internal void WriteMapped(long host, ReadOnlySpan<byte> data)
    {
        CheckDataWrite(host, data.Length);
        ImageFile.Reserve(_file, host, data.Length);
        RandomAccess.Write(_file, data, host);
    }

    /// <summary>Space handed out by MapForWrite past the end of the file (a short last cluster, say) must exist in the file.</summary>
    private void ExtendToMapped()
    {
        if (_mappedEnd > 0 && RandomAccess.GetLength(_file) < _mappedEnd) RandomAccess.SetLength(_file, _mappedEnd);
    }
}
