using System.Runtime.CompilerServices;
using SharpVmm.Memory;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>
/// Guest memory access: the fast paths that probe the TLB of <see cref="Mmu"/> inline, the slow paths that walk and
/// fill it, physical and system-structure access. The MMU itself (TLB, flushes, page walk) is its own type.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    public const int TlbSize = Mmu.TlbSize;
    private const int ReadSet = Mmu.ReadSet, WriteSet = Mmu.WriteSet;
    public const int AccRead = Mmu.AccRead, AccWrite = Mmu.AccWrite, AccFetch = Mmu.AccFetch;

    private readonly Mmu _mmu;
    /// <summary>The MMU's TLB, held here too so the fast paths reach it with one load.</summary>
    private readonly TlbEntry* _tlb;
    private bool _dirtyTracking;
    private long _codeGenSeen;

    /// <summary>The page-fault linear address, kept by the MMU.</summary>
    public ref ulong Cr2 => ref _mmu.Cr2;

    /// <summary>What a page walk reads of this vCPU's state.</summary>
    private PagingState Paging => new()
    {
        Cr0 = Cr0, Cr3 = Cr3, Cr4 = Cr4, Efer = Efer, Cpl = Cpl, Ac = (FlOther & AC) != 0, Pkru = Pkru,
    };

    public void FlushTlb()
    {
        _mmu.FlushAll();
        FlushJumpCache();
    }

    /// <summary>
    /// A CR3 write: drops every translation except global ones (G bit with CR4.PGE), as hardware does, in the TLB
    /// and in the jump cache (whose global entries were made from global translations).
    /// </summary>
    public void FlushNonGlobalTlb()
    {
        bool pge = (Cr4 & Cr4Pge) != 0;
        _mmu.FlushNonGlobal(pge);
        if (pge) FlushNonGlobalJumpCache();
        else FlushJumpCache();
    }

    public void InvalidatePage(ulong la)
    {
        _mmu.InvalidatePage(la);
        FlushJumpCache();
    }

    /// <summary>Called at block boundaries: drops fast write entries when pages became code or dirty logging started.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckWriteTlbValidity()
    {
        long gen = _cache.CodeGeneration;
        bool tracking = false;
        var regions = _regions;
        for (int i = 0; i < regions.Length; i++) tracking |= regions[i].Dirty.Enabled;
        if (gen != _codeGenSeen || tracking != _dirtyTracking)
        {
            _codeGenSeen = gen;
            _dirtyTracking = tracking;
            _mmu.FlushWriteSet();
        }
    }

    /// <summary>AC may have been cleared: entries cached through the SMAP window leave the TLB.</summary>
    public void CloseSmapWindow() => _mmu.CloseSmapWindow((FlOther & AC) != 0);

    /// <summary>STAC: entries parked at the last close come back if the TLB was not flushed since.</summary>
    public void OpenSmapWindow() => _mmu.OpenSmapWindow((Cr4 & Cr4Smap) != 0);

    // ---------------------------------------------------------------- linear access fast paths

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte Read8(ulong la)
    {
        ref TlbEntry e = ref _tlb[ReadSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit)) return *(byte*)(e.Addend + (long)la);
        return (byte)ReadSlow(la, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ushort Read16(ulong la)
    {
        ref TlbEntry e = ref _tlb[ReadSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit) && (la & 0xFFF) <= 0xFFE) return *(ushort*)(e.Addend + (long)la);
        return (ushort)ReadSlow(la, 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Read32(ulong la)
    {
        ref TlbEntry e = ref _tlb[ReadSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit) && (la & 0xFFF) <= 0xFFC) return *(uint*)(e.Addend + (long)la);
        return (uint)ReadSlow(la, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Read64(ulong la)
    {
        ref TlbEntry e = ref _tlb[ReadSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit) && (la & 0xFFF) <= 0xFF8) return *(ulong*)(e.Addend + (long)la);
        return ReadSlow(la, 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadMem(ulong la, int size) => size switch
    {
        8 => Read64(la),
        4 => Read32(la),
        2 => Read16(la),
        _ => Read8(la),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write8(ulong la, byte v)
    {
        ref TlbEntry e = ref _tlb[WriteSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit)) { *(byte*)(e.Addend + (long)la) = v; return; }
        WriteSlow(la, 1, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write16(ulong la, ushort v)
    {
        ref TlbEntry e = ref _tlb[WriteSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit) && (la & 0xFFF) <= 0xFFE) { *(ushort*)(e.Addend + (long)la) = v; return; }
        WriteSlow(la, 2, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write32(ulong la, uint v)
    {
        ref TlbEntry e = ref _tlb[WriteSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit) && (la & 0xFFF) <= 0xFFC) { *(uint*)(e.Addend + (long)la) = v; return; }
        WriteSlow(la, 4, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write64(ulong la, ulong v)
    {
        ref TlbEntry e = ref _tlb[WriteSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit) && (la & 0xFFF) <= 0xFF8) { *(ulong*)(e.Addend + (long)la) = v; return; }
        WriteSlow(la, 8, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteMem(ulong la, int size, ulong v)
    {
        switch (size)
        {
            case 8: Write64(la, v); break;
            case 4: Write32(la, (uint)v); break;
            case 2: Write16(la, (ushort)v); break;
            default: Write8(la, (byte)v); break;
        }
    }

    /// <summary>
    /// Host address of <paramref name="la"/> when the write TLB already maps its page — which it only does for plain
    /// RAM that holds no cached code while dirty logging is off — so a bulk store there is exactly what stores one
    /// at a time through the fast path would do; otherwise null.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* CachedWritePointer(ulong la)
    {
        ref TlbEntry e = ref _tlb[WriteSet + (int)((la >> 12) & (TlbSize - 1))];
        return e.Tag == ((la & ~0xFFFUL) | UserBit) ? (byte*)(e.Addend + (long)la) : null;
    }

    /// <summary>Host address of <paramref name="la"/> when the read TLB already maps its page (RAM only); otherwise null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* CachedReadPointer(ulong la)
    {
        ref TlbEntry e = ref _tlb[ReadSet + (int)((la >> 12) & (TlbSize - 1))];
        return e.Tag == ((la & ~0xFFFUL) | UserBit) ? (byte*)(e.Addend + (long)la) : null;
    }

    /// <summary>
    /// Host pointer for an atomic read-modify-write of <paramref name="size"/> bytes at <paramref name="la"/>, or null
    /// when the operand is split across pages or not plain RAM (the caller then serializes with a global lock).
    /// Checks write permission and sets A/D bits exactly as the write would.
    /// </summary>
    public byte* HostForAtomic(ulong la, int size)
    {
        if ((la & (ulong)(size - 1)) != 0) return null; // misaligned: serialize instead of relying on split locks
        ref TlbEntry e = ref _tlb[WriteSet + (int)((la >> 12) & (TlbSize - 1))];
        if (e.Tag == ((la & ~0xFFFUL) | UserBit)) return (byte*)(e.Addend + (long)la);
        ulong pa = Translate(la, AccWrite, UserBit != 0);
        var r = FindRam(pa);
        if (r is null || _cache.IsCodePage(pa) || (_apic is not null && IsApicPage(pa))) return null;
        r.Dirty.MarkRange(pa - r.GuestBase, (ulong)size);
        return r.Host + (pa - r.GuestBase);
    }

    // ---------------------------------------------------------------- slow paths

    [MethodImpl(MethodImplOptions.NoInlining)]
    public ulong ReadSlow(ulong la, int size)
    {
        if ((la & 0xFFF) + (ulong)size > 0x1000)
        {
            ulong v = 0;
            for (int i = 0; i < size; i++) v |= (ulong)(byte)ReadSlow((la + (ulong)i) & LinMask, 1) << (i * 8);
            return v;
        }
        ulong pa = Translate(la, AccRead, UserBit != 0);
        var r = FindRam(pa);
        if (r is not null && !(_apic is not null && IsApicPage(pa)))
        {
            if (r.Contains(pa & ~0xFFFUL, 0x1000)) _mmu.Fill(la, UserBit, false, r.Host + ((pa & ~0xFFFUL) - r.GuestBase));
            return LoadHost(r.Host + (pa - r.GuestBase), size);
        }
        return PhysReadIo(pa, size);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public void WriteSlow(ulong la, int size, ulong v)
    {
        if ((la & 0xFFF) + (ulong)size > 0x1000)
        {
            // Both pages must be writable before any byte lands.
            ulong second = ((la & ~0xFFFUL) + 0x1000) & LinMask;
            Translate(la, AccWrite, UserBit != 0);
            Translate(second, AccWrite, UserBit != 0);
            for (int i = 0; i < size; i++) WriteSlow((la + (ulong)i) & LinMask, 1, (byte)(v >> (i * 8)));
            return;
        }
        ulong pa = Translate(la, AccWrite, UserBit != 0);
        var r = FindRam(pa);
        if (r is not null && !(_apic is not null && IsApicPage(pa)))
        {
            StoreHost(r.Host + (pa - r.GuestBase), size, v);
            r.Dirty.MarkRange(pa - r.GuestBase, (ulong)size);
            if (_cache.IsCodePage(pa))
            {
                _cache.InvalidatePage(pa);
                return;
            }
            if (!_dirtyTracking && r.Contains(pa & ~0xFFFUL, 0x1000)) _mmu.Fill(la, UserBit, true, r.Host + ((pa & ~0xFFFUL) - r.GuestBase));
            return;
        }
        PhysWriteIo(pa, size, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private MemoryRegion? FindRam(ulong pa)
    {
        var regions = _regions;
        for (int i = 0; i < regions.Length; i++)
            if (regions[i].Contains(pa)) return regions[i];
        return null;
    }

    /// <summary>The xAPIC register page; none when the APIC is disabled or in x2APIC mode (its registers are MSRs then).</summary>
    private bool IsApicPage(ulong pa) => (ApicBase & 0xC00) == 0x800 && (pa & ~0xFFFUL) == (ApicBase & 0xF_FFFF_F000UL);

    private static ulong LoadHost(byte* p, int size) => size switch
    {
        8 => *(ulong*)p,
        4 => *(uint*)p,
        2 => *(ushort*)p,
        _ => *p,
    };

    private static void StoreHost(byte* p, int size, ulong v)
    {
        switch (size)
        {
            case 8: *(ulong*)p = v; break;
            case 4: *(uint*)p = (uint)v; break;
            case 2: *(ushort*)p = (ushort)v; break;
            default: *p = (byte)v; break;
        }
    }

    private ulong PhysReadIo(ulong pa, int size)
    {
        ulong v = 0;
        var span = new Span<byte>(&v, size);
        if (_apic is not null && IsApicPage(pa)) _apic.Read((uint)(pa & 0xFFF), span);
        else _bus.MmioRead(pa, span);
        return v;
    }

    private void PhysWriteIo(ulong pa, int size, ulong v)
    {
        var span = new ReadOnlySpan<byte>(&v, size);
        if (_apic is not null && IsApicPage(pa))
        {
            _apic.Write((uint)(pa & 0xFFF), span);
            _attention = 1; // an EOI or TPR write may unblock a pending interrupt
        }
        else _bus.MmioWrite(pa, span);
    }

    /// <summary>Physical access for page walks and other CPU-internal reads (never through the TLB).</summary>
    public ulong PhysRead(ulong pa, int size)
    {
        var r = FindRam(pa);
        if (r is not null && r.Contains(pa, (ulong)size)) return LoadHost(r.Host + (pa - r.GuestBase), size);
        return PhysReadIo(pa, size);
    }

    public void PhysWrite(ulong pa, int size, ulong v)
    {
        var r = FindRam(pa);
        if (r is not null && r.Contains(pa, (ulong)size))
        {
            StoreHost(r.Host + (pa - r.GuestBase), size, v);
            r.Dirty.MarkRange(pa - r.GuestBase, (ulong)size);
            if (_cache.IsCodePage(pa)) _cache.InvalidatePage(pa);
            return;
        }
        PhysWriteIo(pa, size, v);
    }

    /// <summary>Reads of system structures (GDT, IDT, TSS): supervisor accesses whatever the CPL.</summary>
    public ulong SysRead(ulong la, int size)
    {
        ulong v = 0;
        for (int i = 0; i < size;)
        {
            ulong a = (la + (ulong)i) & LinMask;
            int n = (int)Math.Min((ulong)(size - i), 0x1000 - (a & 0xFFF));
            ulong pa = Translate(a, AccRead, false);
            for (int k = 0; k < n; k++) v |= PhysRead(pa + (ulong)k, 1) << ((i + k) * 8);
            i += n;
        }
        return v;
    }

    public void SysWrite(ulong la, int size, ulong v)
    {
        for (int i = 0; i < size; i++)
        {
            ulong a = (la + (ulong)i) & LinMask;
            PhysWrite(Translate(a, AccWrite, false), 1, (byte)(v >> (i * 8)));
        }
    }

    /// <summary>Supervisor-mode linear writes that go through the TLB-less path (exception frames at a new CPL).</summary>
    public void WriteAsSupervisor(ulong la, int size, ulong v)
    {
        ulong saved = UserBit;
        UserBit = 0;
        try { WriteMem(la, size, v); }
        finally { UserBit = saved; }
    }

    // ---------------------------------------------------------------- page walk

    /// <summary>
    /// Translates a linear address through <see cref="Mmu.Translate"/>, checking permissions for
    /// <paramref name="access"/> and setting accessed/dirty bits. Throws #PF (with CR2 set) on failure.
    /// </summary>
    public ulong Translate(ulong la, int access, bool user) => _mmu.Translate(Paging, la, access, user);
}
