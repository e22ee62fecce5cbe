using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Block.Qcow2;

/// <summary>
/// A qcow2 image (versions 2 and 3). Locking: <see cref="_allocationLock"/> is held shared by requests that only touch already
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

    private readonly SafeFileHandle _file;
    internal readonly Qcow2Header Header;
    private readonly int _clusterBits;
    private readonly int _clusterSize;
    private readonly long _clusterMask;
    private readonly bool _extendedL2;
    private readonly int _l2Bits;
    private readonly int _l2Entries;
    private ulong[] _l1;
    private readonly L2TableCache _l2Tables;
    private readonly Qcow2Refcounts _refcounts;
    private readonly object _lock = new();
    private readonly ReaderWriterLockSlim _allocationLock = new(LockRecursionPolicy.NoRecursion);
    private long _endCluster;
    private readonly List<long> _pendingFrees = [];
    private long _compressedCursor;
    private long _size;
    private bool _dirtyMarked;
    private readonly bool _ignoreFlushes;
    private bool _disposed;
    private bool _repairing;
    private long _decompressedEntry = -1;
    private byte[]? _decompressedCluster;
    internal Func<long, bool>? ReservedClusters;
    private List<Qcow2Snapshot> _snapshots = [];

    public string Path { get; }
    public string FormatName => "qcow2";
    public long Size => Volatile.Read(ref _size);
    public bool IsReadOnly { get; }
    public IBlockImage? Backing { get; private set; }
    public long ActualSize => FileSyscalls.AllocatedBytes(_file);
    public int ClusterSize => _clusterSize;
    public int Version => Header.Version;
    public int RefcountBits => _refcounts.Width.Bits;
    public bool LazyRefcounts => Header.LazyRefcounts;
    public bool ExtendedL2 => _extendedL2;
    public bool IsCorrupt => (Header.Incompatible & Qcow2Header.IncompatCorrupt) != 0;
    public bool IsDirty => (Header.Incompatible & Qcow2Header.IncompatDirty) != 0;
    public string CompressionType => Header.IsZstd ? "zstd" : "zlib";
    public string? BackingFileName => Header.BackingFile;
    public string? BackingFormat => Header.BackingFormat;
    public IReadOnlyList<Qcow2Snapshot> Snapshots => _snapshots;
    internal SafeFileHandle Handle => _file;
    internal Qcow2Refcounts Refcounts => _refcounts;
    internal L2TableCache L2Tables => _l2Tables;

    internal Qcow2Image(string path, SafeFileHandle fh, Qcow2Header h, bool readOnly, ImageOpenOptions options)
    {
        Path = path;
        _file = fh;
        Header = h;
        IsReadOnly = readOnly;
        _clusterBits = h.ClusterBits;
        _clusterSize = 1 << _clusterBits;
        _clusterMask = _clusterSize - 1;
        _extendedL2 = h.ExtendedL2;
        _l2Bits = _clusterBits - (_extendedL2 ? 4 : 3);
        _l2Entries = 1 << _l2Bits;
        _size = h.Size;
        _ignoreFlushes = options.IgnoreFlushes;
        _endCluster = (RandomAccess.GetLength(fh) + _clusterMask) >> _clusterBits;

        _l1 = ReadTable(h.L1TableOffset, h.L1Size, "L1 table");
        _refcounts = new Qcow2Refcounts(this, ReadTable(h.RefcountTableOffset, h.RefcountTableClusters * (_clusterSize / 8), "refcount table"));

        // Cover the whole disk by default (qemu covers 8 GiB per MiB of cache and stops at 32 MiB).
        var l2Tables = (int)Math.Clamp(((h.Size >> (_clusterBits + _l2Bits)) + 1), 4, Math.Max(4, options.L2CacheBytes / _clusterSize));
        _l2Tables = new L2TableCache(this, _clusterBits, _extendedL2, l2Tables);
        _snapshots = Qcow2Snapshot.ReadTable(this, fh, h, RandomAccess.GetLength(fh));
    }

    private ulong[] ReadTable(long offset, int entries, string what)
    {
        var t = new ulong[entries];
        if (entries == 0) return t;
        var buf = new byte[entries * 8L];
        ImageFile.ReadExactly(_file, offset, buf, Path, what);
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
        if (_extendedL2)
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

    internal int ClusterBits => _clusterBits;
    internal int L2Bits => _l2Bits;
    internal ulong[] L1 => _l1;
    internal ulong[] RefcountTable => _refcounts.Table;
    internal long EndCluster { get => _endCluster; set => _endCluster = value; }
    internal int RefcountBlockBits => _refcounts.BlockBits;

    /// <summary>
    /// fdatasync, unless the image was opened with <see cref="ImageOpenOptions.IgnoreFlushes"/> (qemu's cache=unsafe,
    /// qemu-img convert's default): then ordering between writes is kept but nothing waits for the disk.
    /// </summary>
    internal void Sync()
    {
        if (!_ignoreFlushes) FileSyscalls.DataSync(_file);
    }

    internal void WriteHeaderField(int offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        RandomAccess.Write(_file, b, offset);
    }

    internal void WriteHeaderField32(int offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        RandomAccess.Write(_file, b, offset);
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
        if (off < _clusterSize) return true;
        if (Overlaps(Header.L1TableOffset, _l1.Length * 8L)) return true;
        if (Overlaps(Header.RefcountTableOffset, (long)Header.RefcountTableClusters * _clusterSize)) return true;
        if (Header.SnapshotCount > 0 && Overlaps(Header.SnapshotsOffset, Qcow2Snapshot.TableBytes(_snapshots))) return true;
        return false;
        bool Overlaps(long s, long l) => l > 0 && off < s + l && s < off + len;
    }

    internal void ValidateTablePointer(long off, string what)
    {
        if ((off & _clusterMask) != 0) throw Corrupt($"the {what} offset 0x{off:x} is not cluster-aligned");
        if (off < _clusterSize) throw Corrupt($"the {what} offset 0x{off:x} points into the image header");
        if (OverlapsFixedMetadata(off, _clusterSize)) throw Corrupt($"the {what} at 0x{off:x} overlaps other metadata");
        if ((off >> _clusterBits) >= _endCluster) throw Corrupt($"the {what} at 0x{off:x} lies past the end of the file");
    }

    internal void WriteL1Entry(long index)
    {
        MetadataMoved();
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, _l1[index]);
        RandomAccess.Write(_file, b, Header.L1TableOffset + index * 8);
    }

    /// <summary>Host byte offset and sector-rounded length of a compressed cluster descriptor.</summary>
    internal (long Offset, long Length) CompressedExtent(ulong entry)
    {
        var x = 62 - (_clusterBits - 8);
        var off = (long)(entry & ((1UL << x) - 1));
        var sectors = (long)((entry >> x) & ((1UL << (_clusterBits - 8)) - 1));
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
            _file.Dispose();
            Backing?.Dispose();
            _allocationLock.Dispose();
        }
    }
}
