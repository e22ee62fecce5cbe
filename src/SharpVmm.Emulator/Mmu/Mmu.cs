using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVmm.Memory;

namespace SharpVmm.Emulator;

/// <summary>
/// One vCPU's memory-management unit: the software TLB (a read set and a write set of direct-mapped 4 KiB entries in
/// native memory, which the interpreter's fast paths and the translated code probe directly), its fills and
/// flushes, and the page walk with its permission checks and accessed/dirty updates (PageWalk.cs). CR2 lives here
/// because only a page fault writes it.
/// </summary>
internal sealed unsafe partial class Mmu : IDisposable
{
    public const int TlbSize = 512, TlbSets = 2;
    public const int ReadSet = 0, WriteSet = TlbSize;
    public const ulong InvalidTag = 2; // never a valid tag: page-aligned address | bit 0
    public const int AccRead = 0, AccWrite = 1, AccFetch = 2;

    /// <summary>The TLB: <see cref="TlbSize"/> read entries, then as many write entries.</summary>
    public readonly TlbEntry* Tlb;
    /// <summary>Per TLB slot: the translation came from a global leaf with CR4.PGE set, so CR3 writes keep it.</summary>
    private readonly bool* _global;
    /// <summary>A 2 MiB/4 MiB/1 GiB translation may be cached (as 4 KiB slices): INVLPG must then drop everything.</summary>
    private bool _hasLarge;
    /// <summary>Bumped by every flush or invalidation: SMAP entries parked before the last one are stale.</summary>
    private long _generation;

    private readonly MemoryRegion[] _regions;
    private readonly BlockCache? _code;
    private readonly Func<ulong, int, ulong> _readIo;
    private readonly CpuFaultException _fault;
    private bool _disposed;

    /// <summary>The page-fault linear address register.</summary>
    public ulong Cr2;

    /// <param name="memory">Guest RAM, where page tables are read and A/D bits set.</param>
    /// <param name="fault">The vCPU's preallocated exception, filled in and returned by faults.</param>
    /// <param name="code">Decoded code to invalidate when an A/D update lands in a code page.</param>
    /// <param name="readIo">Reads of page-table entries outside RAM; all ones (an open bus) when absent.</param>
    public Mmu(GuestMemory memory, CpuFaultException fault, BlockCache? code = null, Func<ulong, int, ulong>? readIo = null)
    {
        _regions = [.. memory.Regions];
        _fault = fault;
        _code = code;
        _readIo = readIo ?? ((_, size) => X86Cpu.SizeMask(size));
        Tlb = (TlbEntry*)NativeMemory.AllocZeroed((nuint)(TlbSets * TlbSize * sizeof(TlbEntry)));
        _global = (bool*)NativeMemory.AllocZeroed((nuint)(TlbSets * TlbSize));
        FlushAll();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Slot(ulong la, bool write) => (write ? WriteSet : ReadSet) + (int)((la >> 12) & (TlbSize - 1));

    /// <summary>
    /// Host address of <paramref name="la"/> when the TLB maps its page for <paramref name="userBit"/> (1 at CPL 3) in
    /// the read or write set; otherwise null. The vCPU's fast paths inline the same probe.
    /// </summary>
    public byte* Lookup(ulong la, ulong userBit, bool write)
    {
        ref TlbEntry e = ref Tlb[Slot(la, write)];
        return e.Tag == ((la & ~0xFFFUL) | userBit) ? (byte*)(e.Addend + (long)la) : null;
    }

    /// <summary>
    /// Caches the translation of <paramref name="la"/>'s page that the last <see cref="Translate"/> walked, mapped at
    /// <paramref name="hostPage"/>, unless a protection key or the SMAP window forbids caching it.
    /// </summary>
    public void Fill(ulong la, ulong userBit, bool write, byte* hostPage)
    {
        int slot = Slot(la, write);
        if (WalkKeyRestricted || SmapWindowBlocksCaching(slot, userBit)) return;
        ref TlbEntry e = ref Tlb[slot];
        e.Tag = (la & ~0xFFFUL) | userBit;
        _global[slot] = WalkGlobal;
        e.Addend = (long)hostPage - (long)(la & ~0xFFFUL);
    }

    public void FlushAll()
    {
        _generation++;
        _hasLarge = false;
        for (int i = 0; i < TlbSize * TlbSets; i++) { Tlb[i].Tag = InvalidTag; _global[i] = false; }
    }

    /// <summary>A CR3 write: drops every translation except global ones (G bit with CR4.PGE), as hardware does.</summary>
    public void FlushNonGlobal(bool pge)
    {
        if (!pge) { FlushAll(); return; }
        _generation++;
        for (int i = 0; i < TlbSize * TlbSets; i++)
            if (!_global[i]) Tlb[i].Tag = InvalidTag;
    }

    /// <summary>Drops the write set: pages became code, or dirty logging started, so stores must take the slow path.</summary>
    public void FlushWriteSet()
    {
        _generation++;
        for (int i = 0; i < TlbSize; i++) { Tlb[WriteSet + i].Tag = InvalidTag; _global[WriteSet + i] = false; }
    }

    /// <summary>INVLPG: drops <paramref name="la"/>'s page, or everything while large pages may be cached as slices.</summary>
    public void InvalidatePage(ulong la)
    {
        if (_hasLarge) { FlushAll(); return; }
        _generation++;
        int i = (int)(la >> 12) & (TlbSize - 1);
        Tlb[ReadSet + i].Tag = InvalidTag;
        Tlb[WriteSet + i].Tag = InvalidTag;
        _global[ReadSet + i] = _global[WriteSet + i] = false;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        NativeMemory.Free(Tlb);
        NativeMemory.Free(_global);
    }
}
