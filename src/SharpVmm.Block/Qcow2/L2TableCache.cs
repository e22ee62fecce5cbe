using System.Buffers.Binary;

namespace SharpVmm.Block.Qcow2;

/// <summary>
/// The active L2 tables of one qcow2 image in memory: each loaded on first use (its pointer checked against the
/// image's metadata) into a write-back LRU cache, and its entries read and written in the image's format: 8 bytes
/// each, or 16 with extended L2, where the second 8 hold the subclusters' allocation and zero bitmaps. A dirty table
/// reaches the disk only after the refcount blocks it may depend on. Callers hold the image's metadata lock.
/// </summary>
internal sealed class L2TableCache : ITableStore
{
    private readonly Qcow2Image _image;
    private readonly TableCache _tables;
    private readonly int _clusterSize;
    private readonly int _entrySize;

    public L2TableCache(Qcow2Image image, int clusterBits, bool extended, int capacity)
    {
        _image = image;
        _clusterSize = 1 << clusterBits;
        _entrySize = extended ? 16 : 8;
        _tables = new TableCache(_clusterSize, capacity, this);
    }

    /// <summary>How many tables stay in memory (at least 4).</summary>
    public int Capacity => _tables.Capacity;

    public bool HasDirty => _tables.HasDirty;

    /// <summary>The table at host offset <paramref name="offset"/>, read from the image unless cached.</summary>
    public TableCache.Entry Load(long offset) => _tables.Load(offset);

    /// <summary>A cache slot for a table just allocated at <paramref name="offset"/>; the caller fills it and writes it out.</summary>
    public TableCache.Entry Add(long offset) => _tables.Insert(offset);

    /// <summary>Drops a table that is no longer the active one (copied on write, freed).</summary>
    public void Forget(long offset) => _tables.Remove(offset);

    /// <summary>Drops every table, after metadata was rewritten behind the cache's back (snapshot apply, repair).</summary>
    public void Clear() => _tables.Clear();

    /// <summary>Writes every dirty table, in offset order.</summary>
    public void WriteDirty() => _tables.WriteDirty();

    /// <summary>Entry <paramref name="index"/> of a table: host offset and flags (copied, compressed, zero).</summary>
    public ulong ReadEntry(byte[] table, int index) => BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(index * _entrySize));

    public void WriteEntry(byte[] table, int index, ulong entry) => BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(index * _entrySize), entry);

    /// <summary>The subcluster bitmaps of an extended entry: allocated (returned) and reads-as-zero.</summary>
    public static uint ReadSubclusterBitmaps(byte[] table, int index, out uint zero)
    {
        var bitmaps = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(index * 16 + 8));
        zero = (uint)(bitmaps >> 32);
        return (uint)bitmaps;
    }

    void ITableStore.CheckPointer(long offset) => _image.ValidateTablePointer(offset, "L2 table");

    void ITableStore.Read(TableCache.Entry table) => ImageFile.ReadExactly(_image.Handle, table.Offset, table.Data, _image.Path, "L2 table");

    void ITableStore.WriteBack(TableCache.Entry table)
    {
        _image.CheckNoOverlap(table.Offset, _clusterSize, "L2 table", Qcow2Image.MetaKind.ActiveL2);
        // An L2 table may point at clusters whose refcounts are still only in the cache: those go first.
        if (_image.Refcounts.HasDirtyBlocks)
        {
            _image.Refcounts.WriteDirtyBlocks();
            _image.Sync();
        }
        RandomAccess.Write(_image.Handle, table.Data, table.Offset);
    }
}
