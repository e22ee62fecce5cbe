namespace SharpVmm.Block.Qcow2;

/// <summary>
/// A write-back cache of cluster-sized metadata tables (L2 tables or refcount blocks) keyed by host offset, with LRU
/// eviction; <paramref name="store"/> reads and writes them. Not thread-safe: the image serialises access. Evicted
/// entries and their buffers are reused, so a warm cache allocates nothing.
/// </summary>
internal sealed class TableCache(int tableSize, int capacity, ITableStore store)
{
    internal sealed class Entry
    {
        public long Offset;
        public byte[] Data = [];
        public bool Dirty;
        public long LastUse;
    }

    private readonly Dictionary<long, Entry> _tables = new(capacity);
    private long _clock;
    public int Capacity { get; } = Math.Max(4, capacity);
    public int TableSize => tableSize;

    public Entry? TryGet(long offset)
    {
        if (!_tables.TryGetValue(offset, out var e)) return null;
        e.LastUse = ++_clock;
        return e;
    }

    /// <summary>The table at <paramref name="offset"/>, read from the image unless cached.</summary>
    public Entry Load(long offset)
    {
        var e = TryGet(offset);
        if (e != null) return e;
        store.CheckPointer(offset);
        e = Insert(offset);
        try { store.Read(e); }
        catch { _tables.Remove(offset); throw; }
        return e;
    }

    /// <summary>
    /// A slot for a table not yet cached (one just allocated: the caller fills it). When the cache is full the least
    /// recently used entry is evicted, written back first if it is dirty.
    /// </summary>
    public Entry Insert(long offset)
    {
        Entry e;
        if (_tables.Count >= Capacity)
        {
            Entry? victim = null;
            foreach (var c in _tables.Values)
                if (victim == null || c.LastUse < victim.LastUse) victim = c;
            e = victim!;
            if (e.Dirty) store.WriteBack(e);
            _tables.Remove(e.Offset);
        }
        else e = new Entry { Data = new byte[tableSize] };
        e.Offset = offset;
        e.Dirty = false;
        e.LastUse = ++_clock;
        _tables[offset] = e;
        return e;
    }

    public bool HasDirty
    {
        get
        {
            foreach (var e in _tables.Values) if (e.Dirty) return true;
            return false;
        }
    }

    /// <summary>Writes every dirty entry, in offset order so the writes sweep the file once.</summary>
    public void WriteDirty()
    {
        List<Entry>? dirty = null;
        foreach (var e in _tables.Values) if (e.Dirty) (dirty ??= []).Add(e);
        if (dirty == null) return;
        dirty.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        foreach (var e in dirty) { store.WriteBack(e); e.Dirty = false; }
    }

    public void Remove(long offset) => _tables.Remove(offset);
    public void Clear() => _tables.Clear();
}
