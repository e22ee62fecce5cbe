using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Block.Qcow2;

/// <summary>
/// A qcow2 image (versions 2 and 3). Locking: <see cref="_rw"/> is held shared by requests that only touch already
/// allocated clusters and exclusively by anything that changes metadata; <see cref="_lock"/> guards the in-memory
/// tables and caches for the short lookups the shared path does.
/// Crash safety: a cluster's refcount reaches the disk before any table that points at it, a new table's contents
/// before the pointer to it, and a cluster is released only after the tables that pointed at it have been written,
/// so an interrupted write leaves at most leaked clusters.
/// </summary>
public sealed partial class Qcow2Image : IBlockImage
{
    internal const ulong OffsetMask = 0x00ff_ffff_ffff_fe00UL;
    internal const ulong Copied = 1UL << 63;
    internal const ulong CompressedFlag = 1UL << 62;
    internal const ulong ZeroFlag = 1UL;

    private readonly SafeFileHandle _fh;
    internal readonly Qcow2Header Header;
    private readonly int _cb;
    private readonly int _cs;
    private readonly long _csMask;
    private readonly bool _extL2;
    private readonly int _l2Bits;
    private readonly int _l2Entries;
    private readonly int _rbBits;
    private readonly int _refOrder;
    private readonly ulong _refMax;
    private ulong[] _l1;
    private ulong[] _rt;
    private readonly TableCache _l2Cache;
    private readonly TableCache _rbCache;
    private readonly object _lock = new();
    private readonly ReaderWriterLockSlim _rw = new(LockRecursionPolicy.NoRecursion);
    private long _freeHint = 1;
    private long _endCluster;
    private readonly List<long> _pendingFrees = [];
    private long _compressedCursor;
    private long _size;
    private bool _dirtyMarked;
    private readonly bool _ignoreFlushes;
    private bool _disposed;
    private bool _repairing;
    private long _czEntry = -1;
    private byte[]? _czData;
    internal Func<long, bool>? ReservedClusters;
    private List<Qcow2Snapshot> _snapshots = [];

    public string Path { get; }
    public string FormatName => "qcow2";
    public long Size => Volatile.Read(ref _size);
    public bool IsReadOnly { get; }
    public IBlockImage? Backing { get; private set; }
    public long ActualSize => FileSyscalls.AllocatedBytes(_fh);
    public int ClusterSize => _cs;
    public int Version => Header.Version;
    public int RefcountBits => 1 << _refOrder;
    public bool LazyRefcounts => Header.LazyRefcounts;
    public bool ExtendedL2 => _extL2;
    public bool IsCorrupt => (Header.Incompatible & Qcow2Header.IncompatCorrupt) != 0;
    public bool IsDirty => (Header.Incompatible & Qcow2Header.IncompatDirty) != 0;
    public string CompressionType => Header.IsZstd ? "zstd" : "zlib";
    public string? BackingFileName => Header.BackingFile;
    public string? BackingFormat => Header.BackingFormat;
    public IReadOnlyList<Qcow2Snapshot> Snapshots => _snapshots;
    internal SafeFileHandle Handle => _fh;

    internal Qcow2Image(string path, SafeFileHandle fh, Qcow2Header h, bool readOnly, ImageOpenOptions options)
    {
        Path = path;
        _fh = fh;
        Header = h;
        IsReadOnly = readOnly;
        _cb = h.ClusterBits;
        _cs = 1 << _cb;
        _csMask = _cs - 1;
        _extL2 = h.ExtendedL2;
        _l2Bits = _cb - (_extL2 ? 4 : 3);
        _l2Entries = 1 << _l2Bits;
        _refOrder = h.RefcountOrder;
        _rbBits = _cb + 3 - _refOrder;
        _refMax = _refOrder == 6 ? ulong.MaxValue : (1UL << (1 << _refOrder)) - 1;
        _size = h.Size;
        _ignoreFlushes = options.IgnoreFlushes;
        _endCluster = (RandomAccess.GetLength(fh) + _csMask) >> _cb;

        _l1 = ReadTable(h.L1TableOffset, h.L1Size, "L1 table");
        _rt = ReadTable(h.RefcountTableOffset, h.RefcountTableClusters * (_cs / 8), "refcount table");

        // Cover the whole disk by default (qemu covers 8 GiB per MiB of cache and stops at 32 MiB).
        var l2Tables = (int)Math.Clamp(((h.Size >> (_cb + _l2Bits)) + 1), 4, Math.Max(4, options.L2CacheBytes / _cs));
        _l2Cache = new TableCache(_cs, l2Tables);
        _rbCache = new TableCache(_cs, Math.Max(16, Math.Min(1024, (4 << 20) / _cs)));
        _snapshots = Qcow2Snapshot.ReadTable(this, fh, h, RandomAccess.GetLength(fh));
    }

    private ulong[] ReadTable(long offset, int entries, string what)
    {
        var t = new ulong[entries];
        if (entries == 0) return t;
        var buf = new byte[entries * 8L];
        ImageFile.ReadExactly(_fh, offset, buf, Path, what);
        for (var i = 0; i < entries; i++) t[i] = BinaryPrimitives.ReadUInt64BigEndian(buf.AsSpan(i * 8));
        return t;
    }

    internal void AttachBacking(IBlockImage? backing) => Backing = backing;

    /// <summary>Steps taken right after a read-write open: dirty-bit recovery and clearing unknown autoclear bits.</summary>
    internal void PrepareForWriting(bool repairing)
    {
        _repairing = repairing;
        if (IsCorrupt && !repairing)
            throw new BlockImageException($"'{Path}' is marked corrupt; it can only be opened read-only. Run 'sharpvmm img check -r all {Path}' to repair it");
        if (_extL2)
            throw new BlockImageException($"'{Path}' uses extended L2 entries (subclusters), which this program can read but not write; open it read-only or convert it");
        if (Header.Autoclear != 0)
        {
            // We maintain no bitmaps or raw data file, so per the spec every autoclear bit must be cleared.
            Header.Autoclear = 0;
            WriteHeaderField(88, 0UL);
            Sync();
        }
        if (IsDirty && !repairing)
        {
            // Lazy refcounts were in use when the image was last closed uncleanly: rebuild them before trusting them.
            var result = Qcow2Checker.Check(this, CheckRepair.All);
            if (result.Corruptions - result.CorruptionsFixed > 0)
                throw new ImageCorruptException($"'{Path}' was not closed cleanly and its refcounts could not be repaired ({result.Corruptions} errors); run 'sharpvmm img check -r all'");
            ClearDirty();
        }
    }

    // ---- small helpers ---------------------------------------------------------------------------------------

    internal int ClusterBits => _cb;
    internal int L2Bits => _l2Bits;
    internal ulong[] L1 => _l1;
    internal ulong[] RefcountTable => _rt;
    internal long EndCluster { get => _endCluster; set => _endCluster = value; }
    internal int RefcountBlockBits => _rbBits;

    /// <summary>
    /// fdatasync, unless the image was opened with <see cref="ImageOpenOptions.IgnoreFlushes"/> (qemu's cache=unsafe,
    /// qemu-img convert's default): then ordering between writes is kept but nothing waits for the disk.
    /// </summary>
    internal void Sync()
    {
        if (!_ignoreFlushes) FileSyscalls.DataSync(_fh);
    }

    internal void WriteHeaderField(int offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        RandomAccess.Write(_fh, b, offset);
    }

    internal void WriteHeaderField32(int offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        RandomAccess.Write(_fh, b, offset);
    }

    private void MarkDirtyIfLazy()
    {
        if (_dirtyMarked || !Header.LazyRefcounts || Header.Version < 3) return;
        Header.Incompatible |= Qcow2Header.IncompatDirty;
        WriteHeaderField(72, Header.Incompatible);
        Sync();
        _dirtyMarked = true;
    }

    internal void ClearDirty()
    {
        if ((Header.Incompatible & Qcow2Header.IncompatDirty) == 0) return;
        Header.Incompatible &= ~Qcow2Header.IncompatDirty;
        WriteHeaderField(72, Header.Incompatible);
        Sync();
        _dirtyMarked = false;
    }

    internal void MarkCorrupt()
    {
        if (!_repairing) _fatal = true;
        if (IsReadOnly || IsCorrupt) return;
        try
        {
            Header.Incompatible |= Qcow2Header.IncompatCorrupt;
            WriteHeaderField(72, Header.Incompatible);
        }
        catch (IOException) { }
    }

    internal ImageCorruptException Corrupt(string what)
    {
        MarkCorrupt();
        return new ImageCorruptException($"'{Path}' is corrupt: {what}. Run 'sharpvmm img check {Path}' for details");
    }

    /// <summary>Does the cluster range hold fixed metadata (header, L1, refcount or snapshot table)?</summary>
    internal bool OverlapsFixedMetadata(long off, long len)
    {
        if (off < _cs) return true;
        if (Overlaps(Header.L1TableOffset, _l1.Length * 8L)) return true;
        if (Overlaps(Header.RefcountTableOffset, (long)Header.RefcountTableClusters * _cs)) return true;
        if (Header.SnapshotCount > 0 && Overlaps(Header.SnapshotsOffset, Qcow2Snapshot.TableBytes(_snapshots))) return true;
        return false;
        bool Overlaps(long s, long l) => l > 0 && off < s + l && s < off + len;
    }

    private void ValidateTablePointer(long off, string what)
    {
        if ((off & _csMask) != 0) throw Corrupt($"the {what} offset 0x{off:x} is not cluster-aligned");
        if (off < _cs) throw Corrupt($"the {what} offset 0x{off:x} points into the image header");
        if (OverlapsFixedMetadata(off, _cs)) throw Corrupt($"the {what} at 0x{off:x} overlaps other metadata");
        if ((off >> _cb) >= _endCluster) throw Corrupt($"the {what} at 0x{off:x} lies past the end of the file");
    }

    internal TableCache.Entry LoadL2(long off)
    {
        var e = _l2Cache.TryGet(off);
        if (e != null) return e;
        ValidateTablePointer(off, "L2 table");
        e = _l2Cache.Insert(off, WriteBackL2);
        try { ImageFile.ReadExactly(_fh, off, e.Data, Path, "L2 table"); }
        catch { _l2Cache.Remove(off); throw; }
        return e;
    }

    private TableCache.Entry LoadRb(long off)
    {
        var e = _rbCache.TryGet(off);
        if (e != null) return e;
        ValidateTablePointer(off, "refcount block");
        e = _rbCache.Insert(off, WriteBackRb);
        try { ImageFile.ReadExactly(_fh, off, e.Data, Path, "refcount block"); }
        catch { _rbCache.Remove(off); throw; }
        return e;
    }

    private void WriteEntry(TableCache.Entry e) => RandomAccess.Write(_fh, e.Data, e.Offset);

    private void WriteBackRb(TableCache.Entry e)
    {
        CheckNoOverlap(e.Offset, _cs, "refcount block", MetaKind.RefcountBlock);
        WriteEntry(e);
    }

    private void WriteBackL2(TableCache.Entry e)
    {
        CheckNoOverlap(e.Offset, _cs, "L2 table", MetaKind.ActiveL2);
        // An L2 table may point at clusters whose refcounts are still only in the cache: those go first.
        if (_rbCache.HasDirty)
        {
            _rbCache.WriteDirty(WriteBackRb);
            Sync();
        }
        WriteEntry(e);
    }

    internal ulong ReadL2(byte[] t, int i) => BinaryPrimitives.ReadUInt64BigEndian(t.AsSpan(_extL2 ? i * 16 : i * 8));
    internal uint ReadL2Bitmap(byte[] t, int i, out uint zero)
    {
        var b = BinaryPrimitives.ReadUInt64BigEndian(t.AsSpan(i * 16 + 8));
        zero = (uint)(b >> 32);
        return (uint)b;
    }
    private void WriteL2(byte[] t, int i, ulong v) => BinaryPrimitives.WriteUInt64BigEndian(t.AsSpan(i * 8), v);

    internal void WriteL1Entry(long index)
    {
        MetadataMoved();
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, _l1[index]);
        RandomAccess.Write(_fh, b, Header.L1TableOffset + index * 8);
    }

    /// <summary>Host byte offset and sector-rounded length of a compressed cluster descriptor.</summary>
    internal (long Offset, long Length) CompressedExtent(ulong entry)
    {
        var x = 62 - (_cb - 8);
        var off = (long)(entry & ((1UL << x) - 1));
        var sectors = (long)((entry >> x) & ((1UL << (_cb - 8)) - 1));
        return (off, (sectors + 1) * 512 - (off & 511));
    }

    public override string ToString() => $"qcow2 '{Path}'";

    public void Dispose()
    {
        if (_disposed) return;
        try
        {
            if (!IsReadOnly)
            {
                lock (_lock)
                {
                    FlushMetadata(sync: true);
                    ClearDirty();
                }
            }
        }
        finally
        {
            _disposed = true;
            _fh.Dispose();
            Backing?.Dispose();
            _rw.Dispose();
        }
    }
}
