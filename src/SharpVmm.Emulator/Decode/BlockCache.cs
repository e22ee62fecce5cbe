using SharpVmm.Memory;

namespace SharpVmm.Emulator;

/// <summary>
/// Decoded blocks of every vCPU of a VM, keyed by guest-physical address and decode mode, with a bitmap of
/// the RAM pages that hold cached code. A write to such a page (by a guest store or by the VMM through
/// <see cref="GuestMemory"/>) drops the page's blocks.
/// </summary>
internal sealed class BlockCache : IDisposable
{
    private readonly object _lock = new();
    private Dictionary<ulong, Block> _blocks = [];
    private Dictionary<ulong, List<Block>> _byPage = [];
    private readonly long _budgetBytes;
    private long _usedBytes;
    private int _flushes;
    private readonly MemoryRegion[] _regions;
    private readonly ulong[][] _codeBits;
    private readonly GuestMemory _memory;
    private long _codeGeneration;
    private X86Cpu[] _cpus = [];

    /// <param name="budgetBytes">Estimated bytes of decoded code to keep; past it the whole cache is dropped (0: unbounded).</param>
    public BlockCache(GuestMemory memory, long budgetBytes = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        _budgetBytes = budgetBytes;
        _memory = memory;
        _regions = [.. memory.Regions];
        _codeBits = new ulong[_regions.Length][];
        for (int i = 0; i < _regions.Length; i++) _codeBits[i] = new ulong[((_regions[i].Size >> 12) + 63) / 64];
        memory.WriteObserver = OnVmmWrite;
    }

    /// <summary>Serializes locked read-modify-writes that cannot be done with one host atomic (split or MMIO).</summary>
    public object AtomicLock { get; } = new();

    /// <summary>Bumped whenever a page becomes code, so vCPUs drop fast write-TLB entries at their next block.</summary>
    public long CodeGeneration => Volatile.Read(ref _codeGeneration);

    public int Count
    {
        get { lock (_lock) return _blocks.Count; }
    }

    /// <summary>Estimated bytes the cached blocks take (what the budget is compared with).</summary>
    public long UsedBytes
    {
        get { lock (_lock) return _usedBytes; }
    }

    /// <summary>How many times the cache was dropped for going over its budget.</summary>
    public int Flushes => Volatile.Read(ref _flushes);

    public bool IsCodePage(ulong pa)
    {
        var regions = _regions;
        for (int i = 0; i < regions.Length; i++)
        {
            var r = regions[i];
            if (!r.Contains(pa)) continue;
            ulong page = (pa - r.GuestBase) >> 12;
            return (Volatile.Read(ref _codeBits[i][page >> 6]) & (1UL << (int)(page & 63))) != 0;
        }
        return false;
    }

    /// <summary>vCPUs to poke when a page becomes code, so their fast write-TLB entries go before they write it.</summary>
    public void Register(X86Cpu cpu)
    {
        lock (_lock) _cpus = [.. _cpus, cpu];
    }

    public void Unregister(X86Cpu cpu)
    {
        lock (_lock) _cpus = Array.FindAll(_cpus, c => c != cpu);
    }

    public Block? Lookup(ulong key)
    {
        lock (_lock) return _blocks.TryGetValue(key, out var b) ? b : null;
    }

    /// <summary>Adds a block (or returns the one another vCPU added first).</summary>
    public Block Add(Block block)
    {
        bool flushed = false;
        try
        {
            lock (_lock)
            {
                if (_blocks.TryGetValue(block.Key, out var existing)) return existing;
                long cost = block.CostBytes;
                if (_budgetBytes > 0 && _usedBytes + cost > _budgetBytes && _blocks.Count > 0)
                {
                    FlushAllLocked();
                    flushed = true;
                }
                _usedBytes += cost;
                AddLocked(block);
                return block;
            }
        }
        finally
        {
            // The dropped blocks are old, so they sit in the oldest generation, which the GC would otherwise only
            // visit after as much again was allocated: collect now, so the memory really leaves the process.
            if (flushed) GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        }
    }

    private void AddLocked(Block block)
    {
        _blocks[block.Key] = block;
        AddToPage(block, block.PhysPage);
        if (block.PhysPage2 != Block.NoPage) AddToPage(block, block.PhysPage2);

    }

    private void AddToPage(Block block, ulong physPage)
    {
        if (!_byPage.TryGetValue(physPage, out var list)) _byPage[physPage] = list = [];
        list.Add(block);
        for (int i = 0; i < _regions.Length; i++)
        {
            var r = _regions[i];
            if (!r.Contains(physPage)) continue;
            ulong page = (physPage - r.GuestBase) >> 12;
            ulong bit = 1UL << (int)(page & 63);
            if ((_codeBits[i][page >> 6] & bit) == 0)
            {
                Interlocked.Or(ref _codeBits[i][page >> 6], bit);
                Interlocked.Increment(ref _codeGeneration);
                foreach (var c in _cpus) c.RequestAttention();
            }
        }
    }

    /// <summary>
    /// Drops every block, as QEMU flushes its full translation buffer. A vCPU inside a dropped block stops at its
    /// next op (the same abort as for rewritten code) and looks its code up afresh; jump-cache entries die with
    /// their block's Valid flag, and their references are cleared so the memory can go.
    /// </summary>
    private void FlushAllLocked()
    {
        foreach (var b in _blocks.Values) b.Invalidate();
        // New dictionaries rather than Clear(): Clear keeps the grown bucket arrays.
        _blocks = [];
        _byPage = [];
        _usedBytes = 0;
        // No page holds cached code any more; pages become code again (and vCPUs drop write-TLB entries) as
        // blocks come back.
        for (int i = 0; i < _codeBits.Length; i++)
        {
            var bits = _codeBits[i];
            for (int j = 0; j < bits.Length; j++) Volatile.Write(ref bits[j], 0);
        }
        _flushes++;
        foreach (var c in _cpus) c.DropJumpCache();
    }

    /// <summary>Drops every block (the translator's code buffer is full).</summary>
    public void FlushAll()
    {
        lock (_lock) FlushAllLocked();
    }

    public void InvalidatePage(ulong pa)
    {
        ulong page = pa & ~0xFFFUL;
        lock (_lock)
        {
            if (_byPage.Remove(page, out var list))
            {
                foreach (var b in list)
                {
                    // A block straddling two pages sits in both pages' lists: only its first invalidation counts,
                    // and a newer block under the same key is not this one's to remove.
                    if (!b.Valid) continue;
                    b.Invalidate();
                    if (_blocks.TryGetValue(b.Key, out var cur) && cur == b) _blocks.Remove(b.Key);
                    _usedBytes -= b.CostBytes;
                }
            }
            for (int i = 0; i < _regions.Length; i++)
            {
                var r = _regions[i];
                if (!r.Contains(page)) continue;
                ulong p = (page - r.GuestBase) >> 12;
                Interlocked.And(ref _codeBits[i][p >> 6], ~(1UL << (int)(p & 63)));
            }
        }
    }

    private void OnVmmWrite(ulong gpa, ulong length)
    {
        if (length == 0) return;
        for (ulong p = gpa & ~0xFFFUL; p < gpa + length && p >= (gpa & ~0xFFFUL); p += 0x1000)
            if (IsCodePage(p)) InvalidatePage(p);
    }

    public void Dispose()
    {
        if (_memory.WriteObserver == OnVmmWrite) _memory.WriteObserver = null;
    }
}
