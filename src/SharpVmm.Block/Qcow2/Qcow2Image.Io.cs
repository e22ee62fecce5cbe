namespace SharpVmm.Block.Qcow2;

public sealed partial class Qcow2Image
{
    internal enum Kind : byte { Unallocated, Zero, Data, Compressed }

    /// <summary>
    /// Maps the guest range starting at pos (at most maxLen bytes) to its first run of one kind: for data, a run of
    /// host-contiguous clusters. Caller holds <see cref="_lock"/>.
    /// </summary>
    private Kind Lookup(long pos, long maxLen, out long host, out long run, out ulong entry, out bool copied)
    {
        var ci = pos >> _clusterBits;
        var inOff = pos & _clusterMask;
        var l1i = ci >> _l2Bits;
        var l2i = (int)(ci & (_l2Entries - 1));
        host = 0;
        entry = 0;
        copied = false;
        // Everything up to the end of this L2 table's coverage shares one L1 entry.
        var tableEnd = ((l1i + 1) << (_l2Bits + _clusterBits)) - pos;
        var limit = Math.Min(maxLen, tableEnd);
        if (l1i >= _l1.Length || (_l1[l1i] & OffsetMask) == 0)
        {
            run = limit;
            return Kind.Unallocated;
        }
        var t = _l2Tables.Load((long)(_l1[l1i] & OffsetMask)).Data;
        if (_extendedL2) return LookupExtended(t, l2i, inOff, limit, out host, out run, out entry, out copied);
        var e = _l2Tables.ReadEntry(t, l2i);
        entry = e;
        var kind = Classify(e, ci);
        copied = (e & Copied) != 0;
        run = Math.Min(limit, _clusterSize - inOff);
        if (kind == Kind.Compressed) return kind;
        if (kind == Kind.Data) host = (long)(e & OffsetMask) + inOff;
        var expect = (long)(e & OffsetMask) + _clusterSize;
        var i = l2i + 1;
        while (run < limit && i < _l2Entries)
        {
            var n = _l2Tables.ReadEntry(t, i);
            var k = Classify(n, ci + (i - l2i));
            if (k != kind || ((n & Copied) != 0) != copied) break;
            if (kind == Kind.Data)
            {
                if ((long)(n & OffsetMask) != expect) break;
                expect += _clusterSize;
            }
            run = Math.Min(limit, run + _clusterSize);
            i++;
        }
        return kind;
    }

    private Kind Classify(ulong e, long guestCluster)
    {
        if ((e & CompressedFlag) != 0) return Kind.Compressed;
        if ((e & ZeroFlag) != 0 && Header.Version >= 3) return Kind.Zero;
        var off = (long)(e & OffsetMask);
        if (off == 0) return Kind.Unallocated;
        if ((off & _clusterMask) != 0)
            throw Corrupt($"the L2 entry for guest cluster {guestCluster} points at unaligned host offset 0x{off:x}");
        if (off < _clusterSize) throw Corrupt($"the L2 entry for guest cluster {guestCluster} points into the image header");
        return Kind.Data;
    }

    private Kind LookupExtended(byte[] t, int l2i, long inOff, long limit, out long host, out long run, out ulong entry, out bool copied)
    {
        var e = _l2Tables.ReadEntry(t, l2i);
        entry = e;
        host = 0;
        copied = (e & Copied) != 0;
        run = Math.Min(limit, _clusterSize - inOff);
        if ((e & CompressedFlag) != 0) return Kind.Compressed;
        var alloc = L2TableCache.ReadSubclusterBitmaps(t, l2i, out var zero);
        var scBits = _clusterBits - 5;
        var sc = (int)(inOff >> scBits);
        Kind KindOf(int s) => (alloc & (1u << s)) != 0 ? Kind.Data : (zero & (1u << s)) != 0 ? Kind.Zero : Kind.Unallocated;
        if ((alloc & zero) != 0) throw Corrupt($"an extended L2 entry marks subclusters both allocated and zero (0x{alloc & zero:x})");
        var kind = KindOf(sc);
        if (kind == Kind.Data)
        {
            var off = (long)(e & OffsetMask);
            if (off == 0 || (off & _clusterMask) != 0 || off < _clusterSize) throw Corrupt($"an extended L2 entry points at invalid host offset 0x{off:x}");
            host = off + inOff;
        }
        var end = sc + 1;
        while (end < 32 && KindOf(end) == kind) end++;
        run = Math.Min(limit, ((long)end << scBits) - inOff);
        return kind;
    }

    public void Read(long offset, Span<byte> buffer)
    {
        ImageFile.CheckRange(this, offset, buffer.Length);
        _allocationLock.EnterReadLock();
        try { ReadLocked(offset, buffer); }
        finally { _allocationLock.ExitReadLock(); }
    }

    private void ReadLocked(long pos, Span<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            Kind k;
            long host, run;
            ulong entry;
            lock (_lock) k = Lookup(pos, buffer.Length, out host, out run, out entry, out _);
            var part = buffer[..(int)run];
            switch (k)
            {
                case Kind.Data: ImageFile.ReadFully(_file, host, part); break;
                case Kind.Zero: part.Clear(); break;
                case Kind.Unallocated: ReadBacking(pos, part); break;
                case Kind.Compressed: ReadCompressed(entry, (int)(pos & _clusterMask), part); break;
            }
            pos += run;
            buffer = buffer[(int)run..];
        }
    }

    private void ReadBacking(long pos, Span<byte> part)
    {
        var b = Backing;
        if (b == null || pos >= b.Size) { part.Clear(); return; }
        var n = (int)Math.Min(part.Length, b.Size - pos);
        b.Read(pos, part[..n]);
        part[n..].Clear();
    }

    private void ReadCompressed(ulong entry, int inOff, Span<byte> part)
    {
        var key = (long)(entry & ~Copied);
        lock (_lock)
        {
            if (_decompressedEntry == key && _decompressedCluster != null) { _decompressedCluster.AsSpan(inOff, part.Length).CopyTo(part); return; }
        }
        var buf = ImageFile.Rent(_clusterSize);
        try
        {
            DecompressCluster(entry, buf.AsSpan(0, _clusterSize));
            buf.AsSpan(inOff, part.Length).CopyTo(part);
            lock (_lock)
            {
                _decompressedCluster ??= new byte[_clusterSize];
                buf.AsSpan(0, _clusterSize).CopyTo(_decompressedCluster);
                _decompressedEntry = key;
            }
        }
        finally { ImageFile.Return(buf); }
    }

    internal void DecompressCluster(ulong entry, Span<byte> dst)
    {
        var (off, len) = CompressedExtent(entry);
        if (off < _clusterSize || off >= _endCluster << _clusterBits)
            throw Corrupt($"a compressed cluster descriptor points at 0x{off:x}, outside the image's data area");
        var src = ImageFile.Rent((int)len);
        try
        {
            ImageFile.ReadFully(_file, off, src.AsSpan(0, (int)len));
            Qcow2Compression.Decompress(src.AsSpan(0, (int)len), dst, Header.IsZstd, Path);
        }
        finally { ImageFile.Return(src); }
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        ImageFile.CheckWritable(this);
        ImageFile.CheckRange(this, offset, data.Length);
        CheckNotFatal();
        _allocationLock.EnterReadLock();
        try
        {
            // Clusters this image owns alone are overwritten in place, concurrently with other such requests.
            while (data.Length > 0)
            {
                Kind k;
                long host, run;
                bool copied;
                lock (_lock)
                {
                    k = Lookup(offset, data.Length, out host, out run, out _, out copied);
                    if (k != Kind.Data || !copied) break;
                    CheckDataWrite(host, run);
                }
                RandomAccess.Write(_file, data[..(int)run], host);
                offset += run;
                data = data[(int)run..];
            }
        }
        finally { _allocationLock.ExitReadLock(); }
        if (data.Length == 0) return;
        _allocationLock.EnterWriteLock();
        try
        {
            lock (_lock) WriteAllocating(offset, data);
        }
        finally { _allocationLock.ExitWriteLock(); }
    }

    private void CheckDataWrite(long host, long len)
    {
        if (host + len > _endCluster << _clusterBits)
            throw Fatal($"a data cluster at 0x{host:x} lies past the end of the file", host, len);
        CheckNoOverlap(host, len, "data");
    }

    /// <summary>The write path that may allocate clusters, copy-on-write shared ones and update L2. Holds the write lock.</summary>
    private void WriteAllocating(long pos, ReadOnlySpan<byte> data)
    {
        CheckNotFatal();
        MarkDirtyIfLazy();
        while (data.Length > 0)
        {
            var ci = pos >> _clusterBits;
            var inOff = (int)(pos & _clusterMask);
            var t = GetL2ForWrite(ci, out var l2i);
            var e = _l2Tables.ReadEntry(t.Data, l2i);
            var kind = Classify(e, ci);
            if (kind == Kind.Data && (e & Copied) != 0)
            {
                var n = (int)Math.Min(data.Length, _clusterSize - inOff);
                var host = (long)(e & OffsetMask) + inOff;
                CheckDataWrite(host, n);
                RandomAccess.Write(_file, data[..n], host);
                pos += n;
                data = data[n..];
                continue;
            }
            // Count the clusters from here that need fresh space, within this L2 table and this request.
            var wantClusters = (int)Math.Min(((inOff + (long)data.Length + _clusterMask) >> _clusterBits), _l2Entries - l2i);
            var k = 1;
            while (k < wantClusters)
            {
                var n = _l2Tables.ReadEntry(t.Data, l2i + k);
                if (Classify(n, ci + k) == Kind.Data && (n & Copied) != 0) break;
                k++;
            }
            var hostStart = AllocateRun(k, out var got);
            CheckNoOverlap(hostStart, (long)got << _clusterBits, "data");
            // AllocateRun never touches the L2 cache, but be defensive about table identity.
            t = GetL2ForWrite(ci, out l2i);
            var end = Math.Min(pos + data.Length, (ci + got) << _clusterBits);
            var len = (int)(end - pos);
            var firstOld = _l2Tables.ReadEntry(t.Data, l2i);
            var lastOld = _l2Tables.ReadEntry(t.Data, l2i + got - 1);
            var tailOff = (int)(end & _clusterMask);
            var fileLength = RandomAccess.GetLength(_file);
            if (hostStart >= fileLength && ReadsAsZero(ci, firstOld) && ReadsAsZero(ci + got - 1, lastOld))
            {
                // Fresh space past the end of the file already reads as zero: write only the data and extend the
                // file over the rest of the run (sparse), instead of writing the zero parts of the clusters.
                RandomAccess.Write(_file, data[..len], hostStart + inOff);
                var runEnd = hostStart + ((long)got << _clusterBits);
                if (RandomAccess.GetLength(_file) < runEnd) RandomAccess.SetLength(_file, runEnd);
            }
            else
            {
                var buf = (inOff != 0 || tailOff != 0) ? ImageFile.Rent(_clusterSize) : null;
                try { WriteWithCopy(ci, got, hostStart, inOff, tailOff, len, firstOld, lastOld, data, buf); }
                finally { if (buf != null) ImageFile.Return(buf); }
            }
            for (var j = 0; j < got; j++)
            {
                var old = _l2Tables.ReadEntry(t.Data, l2i + j);
                _l2Tables.WriteEntry(t.Data, l2i + j, (ulong)(hostStart + (long)j * _clusterSize) | Copied);
                FreeDeferred(old);
            }
            t.Dirty = true;
            pos += len;
            data = data[len..];
        }
    }

    private void WriteWithCopy(long ci, int got, long hostStart, int inOff, int tailOff, int len, ulong firstOld, ulong lastOld, ReadOnlySpan<byte> data, byte[]? buf)
    {
        var written = 0;
        if (inOff != 0 || (got == 1 && tailOff != 0))
        {
            // Head cluster only partly written: merge with its old contents.
            ReadOldCluster(ci, firstOld, buf!);
            var n = Math.Min(len, _clusterSize - inOff);
            data[..n].CopyTo(buf.AsSpan(inOff));
            RandomAccess.Write(_file, buf.AsSpan(0, _clusterSize), hostStart);
            written = n;
        }
        var fullEnd = tailOff != 0 ? len - tailOff : len;
        if (fullEnd > written)
        {
            RandomAccess.Write(_file, data[written..fullEnd], hostStart + inOff + written);
            written = fullEnd;
        }
        if (written < len)
        {
            ReadOldCluster(ci + got - 1, lastOld, buf!);
            data[written..len].CopyTo(buf);
            RandomAccess.Write(_file, buf.AsSpan(0, _clusterSize), (long)(got - 1) * _clusterSize + hostStart);
        }
    }

    /// <summary>Would the guest cluster read as zero with this (old) L2 entry?</summary>
    private bool ReadsAsZero(long ci, ulong e)
    {
        var k = Classify(e, ci);
        if (k == Kind.Zero) return true;
        if (k != Kind.Unallocated) return false;
        return Backing == null || (ci << _clusterBits) >= Backing.Size;
    }

    /// <summary>The current contents of a guest cluster given its (old) L2 entry: for copy-on-write.</summary>
    private void ReadOldCluster(long ci, ulong e, byte[] buf)
    {
        var span = buf.AsSpan(0, _clusterSize);
        switch (Classify(e, ci))
        {
            case Kind.Data: ImageFile.ReadFully(_file, (long)(e & OffsetMask), span); break;
            case Kind.Zero: span.Clear(); break;
            case Kind.Compressed: DecompressCluster(e, span); break;
            default: ReadBacking(ci << _clusterBits, span); break;
        }
    }

    /// <summary>The L2 table for guest cluster ci, made writable: allocated if missing, copied if shared with a snapshot.</summary>
    private TableCache.Entry GetL2ForWrite(long ci, out int l2i)
    {
        var l1i = ci >> _l2Bits;
        l2i = (int)(ci & (_l2Entries - 1));
        if (l1i >= _l1.Length) throw new InvalidOperationException("guest cluster beyond the L1 table");
        var l1e = _l1[l1i];
        var off = (long)(l1e & OffsetMask);
        if (off != 0 && (l1e & Copied) != 0) return _l2Tables.Load(off);

        byte[]? copy = null;
        if (off != 0)
        {
            copy = ImageFile.Rent(_clusterSize);
            _l2Tables.Load(off).Data.AsSpan(0, _clusterSize).CopyTo(copy);
        }
        try
        {
            var newOff = AllocateRun(1, out _);
            var n = _l2Tables.Add(newOff);
            if (copy != null) copy.AsSpan(0, _clusterSize).CopyTo(n.Data);
            else Array.Clear(n.Data);
            // Refcounts, then the table, then the pointer to it.
            _refcounts.WriteDirtyBlocks();
            Sync();
            CheckNoOverlap(newOff, _clusterSize, "L2 table");
            RandomAccess.Write(_file, n.Data, newOff);
            Sync();
            n.Dirty = false;
            _l1[l1i] = (ulong)newOff | Copied;
            WriteL1Entry(l1i);
            if (off != 0)
            {
                _l2Tables.Forget(off);
                _pendingFrees.Add(off >> _clusterBits);
            }
            return n;
        }
        finally { if (copy != null) ImageFile.Return(copy); }
    }

    /// <summary>Queues the release of what an L2 entry pointed at; applied once the new L2 entry is on disk.</summary>
    private void FreeDeferred(ulong e)
    {
        if ((e & CompressedFlag) != 0)
        {
            var (off, len) = CompressedExtent(e);
            for (var c = off >> _clusterBits; c <= (off + len - 1) >> _clusterBits; c++) _pendingFrees.Add(c);
            return;
        }
        var host = (long)(e & OffsetMask);
        if (host != 0) _pendingFrees.Add(host >> _clusterBits);
    }

    public void WriteZeroes(long offset, long length, bool unmap) => ZeroOrDiscard(offset, length, unmap, discard: false);

    public void Discard(long offset, long length) => ZeroOrDiscard(offset, length, true, discard: true);

    private void ZeroOrDiscard(long offset, long length, bool unmap, bool discard)
    {
        ImageFile.CheckWritable(this);
        ImageFile.CheckRange(this, offset, length);
        CheckNotFatal();
        _allocationLock.EnterWriteLock();
        try
        {
            lock (_lock)
            {
                MarkDirtyIfLazy();
                var end = offset + length;
                while (offset < end)
                {
                    var inOff = offset & _clusterMask;
                    var n = Math.Min(end - offset, _clusterSize - inOff);
                    var ci = offset >> _clusterBits;
                    // The last cluster of an image whose size is not cluster-aligned counts as whole.
                    var whole = inOff == 0 && (n == _clusterSize || offset + n == Size);
                    if (!whole)
                    {
                        if (!discard) ZeroPartial(offset, (int)n);
                        offset += n;
                        continue;
                    }
                    ZeroWholeCluster(ci, unmap, discard);
                    offset += n;
                }
            }
        }
        finally { _allocationLock.ExitWriteLock(); }
    }

    private void ZeroPartial(long offset, int n)
    {
        var zero = ImageFile.Rent(n);
        try
        {
            Array.Clear(zero, 0, n);
            WriteAllocating(offset, zero.AsSpan(0, n));
        }
        finally { ImageFile.Return(zero); }
    }

    private void ZeroWholeCluster(long ci, bool unmap, bool discard)
    {
        var l1i = ci >> _l2Bits;
        var hasBacking = Backing != null && (ci << _clusterBits) < Backing.Size;
        var v3 = Header.Version >= 3;
        if (l1i >= _l1.Length) return;
        if ((_l1[l1i] & OffsetMask) == 0 && !hasBacking) return;
        if (!v3)
        {
            if (hasBacking)
            {
                if (!discard) ZeroPartial(ci << _clusterBits, _clusterSize);
                return;
            }
        }
        var t = GetL2ForWrite(ci, out var l2i);
        var old = _l2Tables.ReadEntry(t.Data, l2i);
        ulong nu;
        if (!v3) nu = 0;
        else if (discard) nu = hasBacking ? ZeroFlag : 0;
        else if (!unmap && Classify(old, ci) is Kind.Data or Kind.Zero && (old & Copied) != 0 && (old & OffsetMask) != 0)
        {
            // Keep the allocation (preallocated images stay preallocated), just mark it as reading zero.
            _l2Tables.WriteEntry(t.Data, l2i, old | ZeroFlag);
            t.Dirty = true;
            return;
        }
        else nu = ZeroFlag;
        if (nu == old) return;
        _l2Tables.WriteEntry(t.Data, l2i, nu);
        t.Dirty = true;
        FreeDeferred(old);
    }

    public BlockStatus GetStatus(long offset, long length)
    {
        ImageFile.CheckRange(this, offset, length);
        length = Math.Min(length, Size - offset);
        Kind k;
        long host, run;
        _allocationLock.EnterReadLock();
        try { lock (_lock) k = Lookup(offset, length, out host, out run, out _, out _); }
        finally { _allocationLock.ExitReadLock(); }
        switch (k)
        {
            case Kind.Data:
                return new BlockStatus(offset, run, BlockStatusFlags.Present | BlockStatusFlags.Data | BlockStatusFlags.OffsetValid, host, 0, Path);
            case Kind.Zero:
                return new BlockStatus(offset, run, BlockStatusFlags.Present | BlockStatusFlags.Zero, 0, 0, Path);
            case Kind.Compressed:
                return new BlockStatus(offset, run, BlockStatusFlags.Present | BlockStatusFlags.Data | BlockStatusFlags.Compressed, 0, 0, Path);
        }
        var b = Backing;
        if (b == null) return new BlockStatus(offset, run, BlockStatusFlags.Zero, 0, 0, Path);
        if (offset >= b.Size) return new BlockStatus(offset, run, BlockStatusFlags.Zero, 0, 1 + ChainDepth(b), Path);
        var s = b.GetStatus(offset, Math.Min(run, b.Size - offset));
        return s with { Depth = s.Depth + 1 };
    }

    private static int ChainDepth(IBlockImage b)
    {
        var d = 0;
        for (var x = b.Backing; x != null; x = x.Backing) d++;
        return d;
    }

    /// <summary>
    /// Compresses one guest cluster into dst (at least ClusterSize bytes); returns the length, or -1 when it does not
    /// save at least a sector (then the cluster is stored plainly). Thread-safe and lock-free, so callers can
    /// compress in parallel and store in order.
    /// </summary>
    public int CompressCluster(ReadOnlySpan<byte> cluster, Span<byte> dst)
    {
        if (_clusterBits <= 9 || cluster.Length > _clusterSize) return -1;
        if (LooksRandom(cluster)) return -1;
        var src = ImageFile.Rent(_clusterSize);
        try
        {
            cluster.CopyTo(src);
            Array.Clear(src, cluster.Length, _clusterSize - cluster.Length);
            var len = Qcow2Compression.Compress(src.AsSpan(0, _clusterSize), dst[..(_clusterSize - 512)], Header.IsZstd);
            return len > 0 && len < _clusterSize - 512 ? len : -1;
        }
        finally { ImageFile.Return(src); }
    }

    /// <summary>
    /// True when the byte histogram is so flat (entropy ≥ 7.99 bits/byte) that deflate or zstd could not save the
    /// 512 bytes a compressed cluster must save; the cluster would be stored plainly anyway, so skip the attempt.
    /// </summary>
    private static bool LooksRandom(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4096) return false;
        Span<int> hist = stackalloc int[256];
        hist.Clear();
        foreach (var b in data) hist[b]++;
        double h = 0, n = data.Length;
        foreach (var c in hist)
            if (c > 0) { var p = c / n; h -= p * Math.Log2(p); }
        return h >= 7.99;
    }

    /// <summary>
    /// Stores one whole guest cluster compressed (qemu-img convert -c). Falls back to a plain write when the data does
    /// not compress. The guest range must be cluster-aligned; the last cluster may be short.
    /// </summary>
    public void WriteCompressed(long offset, ReadOnlySpan<byte> cluster)
    {
        var dst = ImageFile.Rent(_clusterSize);
        try { WriteCompressed(offset, cluster, dst.AsSpan(0, Math.Max(0, CompressCluster(cluster, dst)))); }
        finally { ImageFile.Return(dst); }
    }

    /// <summary>Stores a cluster already compressed by <see cref="CompressCluster"/>; an empty compressed span means "store plainly".</summary>
    public void WriteCompressed(long offset, ReadOnlySpan<byte> cluster, ReadOnlySpan<byte> compressed)
    {
        ImageFile.CheckWritable(this);
        if ((offset & _clusterMask) != 0 || cluster.Length > _clusterSize || (cluster.Length < _clusterSize && offset + cluster.Length != Size))
            throw new ArgumentException("compressed writes cover exactly one cluster");
        ImageFile.CheckRange(this, offset, cluster.Length);
        if (compressed.Length == 0)
        {
            Write(offset, cluster);
            return;
        }
        _allocationLock.EnterWriteLock();
        try
        {
            lock (_lock) StoreCompressed(offset >> _clusterBits, compressed);
        }
        finally { _allocationLock.ExitWriteLock(); }
    }

    private void StoreCompressed(long ci, ReadOnlySpan<byte> data)
    {
        CheckNotFatal();
        MarkDirtyIfLazy();
        var t = GetL2ForWrite(ci, out var l2i);
        long at;
        var cur = _compressedCursor;
        if (cur != 0 && (cur & _clusterMask) != 0 && (cur & _clusterMask) + data.Length <= _clusterSize)
        {
            at = cur;
            AddRefcount(cur >> _clusterBits, 1);
        }
        else
        {
            var fresh = AllocateRun(1, out _);
            if (cur != 0 && (cur & _clusterMask) != 0 && fresh == ((cur >> _clusterBits) + 1) << _clusterBits)
            {
                // Spill into the next cluster: both clusters are referenced by this descriptor.
                at = cur;
                AddRefcount(cur >> _clusterBits, 1);
            }
            else at = fresh;
        }
        CheckNoOverlap(at, data.Length, "compressed data");
        RandomAccess.Write(_file, data, at);
        _compressedCursor = at + data.Length;
        _endCluster = Math.Max(_endCluster, (_compressedCursor + _clusterMask) >> _clusterBits);
        var x = 62 - (_clusterBits - 8);
        var sectors = ((at + data.Length - 1) >> 9) - (at >> 9);
        var entry = CompressedFlag | ((ulong)sectors << x) | (ulong)at;
        t = GetL2ForWrite(ci, out l2i);
        var old = _l2Tables.ReadEntry(t.Data, l2i);
        _l2Tables.WriteEntry(t.Data, l2i, entry);
        t.Dirty = true;
        FreeDeferred(old);
    }

    public void Flush()
    {
        if (IsReadOnly) return;
        lock (_lock) FlushMetadata(sync: true);
    }
}
