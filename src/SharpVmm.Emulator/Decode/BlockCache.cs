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
    private readonly Dictionary<ulong, Block> _blocks = [];
    private readonly Dictionary<ulong, List<Block>> _byPage = [];
    private readonly MemoryRegion[] _regions;
    private readonly ulong[][] _codeBits;
    private readonly GuestMemory _memory;
    private long _codeGeneration;
    private X86Cpu[] _cpus = [];

    public BlockCache(GuestMemory memory)
    {
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
        lock (_lock)
        {
            if (_blocks.TryGetValue(block.Key, out var existing)) return existing;
            _blocks[block.Key] = block;
            if (!_byPage.TryGetValue(block.PhysPage, out var list)) _byPage[block.PhysPage] = list = [];
            list.Add(block);
            for (int i = 0; i < _regions.Length; i++)
            {
                var r = _regions[i];
                if (!r.Contains(block.PhysPage)) continue;
                ulong page = (block.PhysPage - r.GuestBase) >> 12;
                ulong bit = 1UL << (int)(page & 63);
                if ((_codeBits[i][page >> 6] & bit) == 0)
                {
                    Interlocked.Or(ref _codeBits[i][page >> 6], bit);
                    Interlocked.Increment(ref _codeGeneration);
                    foreach (var c in _cpus) c.RequestAttention();
                }
            }
            return block;
        }
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
                    b.Invalidate();
                    _blocks.Remove(b.Key);
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
