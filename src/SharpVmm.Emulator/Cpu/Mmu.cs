using System.Runtime.CompilerServices;
using SharpVmm.Memory;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

internal struct TlbEntry
{
    /// <summary>Linear page address | user bit; <see cref="X86Cpu.InvalidTag"/> when empty.</summary>
    public ulong Tag;
    /// <summary>Host address = linear address + Addend (RAM pages only).</summary>
    public long Addend;
}

/// <summary>Linear-to-physical translation, the software TLB and guest memory access.</summary>
internal sealed unsafe partial class X86Cpu
{
    public const int TlbSize = 512, TlbSets = 2;
    public const ulong InvalidTag = 2; // never a valid tag: page-aligned address | bit 0
    private const int ReadSet = 0, WriteSet = TlbSize;
    public const int AccRead = 0, AccWrite = 1, AccFetch = 2;

    private readonly TlbEntry* _tlb;
    /// <summary>Per TLB slot: the translation came from a global leaf with CR4.PGE set, so CR3 writes keep it.</summary>
    private readonly bool* _tlbGlobal;
    /// <summary>Set by <see cref="Translate"/>: the last walk ended in a global leaf (G bit with CR4.PGE).</summary>
    private bool _walkGlobal;
    /// <summary>The last walk ended on a page user mode may access (U/S set at every level).</summary>
    private bool _walkUserPage;
    private bool _dirtyTracking;
    private long _codeGenSeen;

    /// <summary>A 2 MiB/4 MiB/1 GiB translation may be cached (as 4 KiB slices): INVLPG must then drop everything.</summary>
    private bool _tlbHasLarge;

    public void FlushTlb()
    {
        _tlbGeneration++;
        _tlbHasLarge = false;
        for (int i = 0; i < TlbSize * TlbSets; i++) { _tlb[i].Tag = InvalidTag; _tlbGlobal[i] = false; }
        FlushJumpCache();
    }

    /// <summary>
    /// A CR3 write: drops every translation except global ones (G bit with CR4.PGE), as hardware does. The jump
    /// cache is emptied anyway; its blocks are found again through a page walk, which is always correct.
    /// </summary>
    public void FlushNonGlobalTlb()
    {
        if ((Cr4 & Cr4Pge) == 0) { FlushTlb(); return; }
        _tlbGeneration++;
        for (int i = 0; i < TlbSize * TlbSets; i++)
            if (!_tlbGlobal[i]) _tlb[i].Tag = InvalidTag;
        FlushJumpCache();
    }


    private void FlushWriteTlb()
    {
        _tlbGeneration++;
        for (int i = 0; i < TlbSize; i++) { _tlb[WriteSet + i].Tag = InvalidTag; _tlbGlobal[WriteSet + i] = false; }
    }

    public void InvalidatePage(ulong la)
    {
        if (_tlbHasLarge) { FlushTlb(); return; }
        _tlbGeneration++;
        int i = (int)(la >> 12) & (TlbSize - 1);
        _tlb[ReadSet + i].Tag = InvalidTag;
        _tlb[WriteSet + i].Tag = InvalidTag;
        _tlbGlobal[ReadSet + i] = _tlbGlobal[WriteSet + i] = false;
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
            FlushWriteTlb();
        }
    }

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
            if (r.Contains(pa & ~0xFFFUL, 0x1000))
            {
                int slot = ReadSet + (int)((la >> 12) & (TlbSize - 1));
                ref TlbEntry e = ref _tlb[slot];
                if (_walkKeyRestricted || SmapWindowBlocksCaching(slot)) return LoadHost(r.Host + (pa - r.GuestBase), size);
                e.Tag = (la & ~0xFFFUL) | UserBit;
                _tlbGlobal[slot] = _walkGlobal;
                e.Addend = (long)(r.Host + ((pa & ~0xFFFUL) - r.GuestBase)) - (long)(la & ~0xFFFUL);
            }
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
            if (!_dirtyTracking && r.Contains(pa & ~0xFFFUL, 0x1000))
            {
                int slot = WriteSet + (int)((la >> 12) & (TlbSize - 1));
                ref TlbEntry e = ref _tlb[slot];
                if (_walkKeyRestricted || SmapWindowBlocksCaching(slot)) return;
                e.Tag = (la & ~0xFFFUL) | UserBit;
                _tlbGlobal[slot] = _walkGlobal;
                e.Addend = (long)(r.Host + ((pa & ~0xFFFUL) - r.GuestBase)) - (long)(la & ~0xFFFUL);
            }
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
    /// Translates a linear address, checking permissions for <paramref name="access"/> and setting accessed/dirty
    /// bits as hardware does. Throws #PF (with CR2 set) on failure.
    /// </summary>
    public ulong Translate(ulong la, int access, bool user)
    {
        _walkGlobal = false;
        _walkUserPage = false;
        _walkKeyRestricted = false;
        if ((Cr0 & Cr0Pg) == 0) return la & 0xFFFF_FFFF;
        // Only the slow path gets here (TLB tags are canonical addresses), so the check costs hits nothing.
        if ((Efer & EferLma) != 0 && !IsCanonical(la)) throw NonCanonicalFault();
        bool pge = (Cr4 & Cr4Pge) != 0;
        bool nxe = (Efer & EferNxe) != 0;
        bool write = access == AccWrite;
        ulong pa;
        bool allowWrite = true, allowUser = true, noExec = false;
        // Physical-address bits above MAXPHYADDR (40, CPUID 0x80000008) and XD without EFER.NXE are reserved.
        ulong reserved = 0x000F_FF00_0000_0000UL | (nxe ? 0 : 1UL << 63);
        if ((Efer & EferLma) != 0)
        {
            // 4-level paging.
            ulong table = Cr3 & 0x000F_FFFF_FFFF_F000UL;
            int level = 4;
            while (true)
            {
                int shift = 12 + 9 * (level - 1);
                ulong entryPa = table + (((la >> shift) & 0x1FF) << 3);
                ulong e = PhysRead(entryPa, 8);
                if ((e & 1) == 0) throw PageFault(la, access, user, false);
                allowWrite &= (e & 2) != 0;
                allowUser &= (e & 4) != 0;
                noExec |= nxe && (long)e < 0;
                bool leaf = level == 1 || ((e & 0x80) != 0 && level <= 3);
                if ((e & 0x80) != 0 && level == 4) throw PageFault(la, access, user, true);
                if ((e & reserved) != 0 || (leaf && level > 1 && (e & ((1UL << shift) - 1) & ~0x1FFFUL) != 0))
                    throw PageFault(la, access, user, true);
                if (leaf)
                {
                    CheckAccess(la, access, user, allowWrite, allowUser, noExec);
                    if (allowUser) CheckProtectionKey(la, access, user, e);
                    SetAccessedDirty(entryPa, e, write, 8);
                    if (level > 1) _tlbHasLarge = true;
                    _walkGlobal = pge && (e & 0x100) != 0;
                    ulong pageMask = (1UL << shift) - 1;
                    pa = (e & 0x000F_FFFF_FFFF_F000UL & ~pageMask) | (la & pageMask);
                    return pa;
                }
                if ((e & 0x20) == 0) SetAccessedDirty(entryPa, e, false, 8);
                table = e & 0x000F_FFFF_FFFF_F000UL;
                level--;
            }
        }
        la &= 0xFFFF_FFFF;
        if ((Cr4 & Cr4Pae) != 0)
        {
            // PAE paging: PDPT of 4 entries, then 2 levels of 64-bit entries.
            ulong pdpteAddr = (Cr3 & 0xFFFF_FFE0UL) + ((la >> 30) << 3);
            ulong pdpte = PhysRead(pdpteAddr, 8);
            if ((pdpte & 1) == 0) throw PageFault(la, access, user, false);
            ulong table = pdpte & 0x000F_FFFF_FFFF_F000UL;
            for (int level = 2; level >= 1; level--)
            {
                int shift = 12 + 9 * (level - 1);
                ulong entryPa = table + (((la >> shift) & 0x1FF) << 3);
                ulong e = PhysRead(entryPa, 8);
                if ((e & 1) == 0) throw PageFault(la, access, user, false);
                if ((e & reserved) != 0 || (level == 2 && (e & 0x80) != 0 && (e & 0x1F_E000UL) != 0)) throw PageFault(la, access, user, true);
                allowWrite &= (e & 2) != 0;
                allowUser &= (e & 4) != 0;
                noExec |= nxe && (long)e < 0;
                if (level == 1 || (e & 0x80) != 0)
                {
                    CheckAccess(la, access, user, allowWrite, allowUser, noExec);
                    SetAccessedDirty(entryPa, e, write, 8);
                    if (level > 1) _tlbHasLarge = true;
                    _walkGlobal = pge && (e & 0x100) != 0;
                    ulong pageMask = (1UL << shift) - 1;
                    return (e & 0x000F_FFFF_FFFF_F000UL & ~pageMask) | (la & pageMask);
                }
                if ((e & 0x20) == 0) SetAccessedDirty(entryPa, e, false, 8);
                table = e & 0x000F_FFFF_FFFF_F000UL;
            }
        }
        // 32-bit paging with optional 4 MiB pages.
        {
            ulong pdeAddr = (Cr3 & 0xFFFF_F000UL) + ((la >> 22) << 2);
            ulong pde = PhysRead(pdeAddr, 4);
            if ((pde & 1) == 0) throw PageFault(la, access, user, false);
            allowWrite &= (pde & 2) != 0;
            allowUser &= (pde & 4) != 0;
            if ((pde & 0x80) != 0 && (Cr4 & Cr4Pse) != 0)
            {
                CheckAccess(la, access, user, allowWrite, allowUser, false);
                SetAccessedDirty(pdeAddr, pde, write, 4);
                _tlbHasLarge = true;
                _walkGlobal = pge && (pde & 0x100) != 0;
                return (pde & 0xFFC0_0000UL) | ((pde >> 13 & 0xFF) << 32) | (la & 0x3F_FFFF);
            }
            if ((pde & 0x20) == 0) SetAccessedDirty(pdeAddr, pde, false, 4);
            ulong pteAddr = (pde & 0xFFFF_F000UL) + (((la >> 12) & 0x3FF) << 2);
            ulong pte = PhysRead(pteAddr, 4);
            if ((pte & 1) == 0) throw PageFault(la, access, user, false);
            allowWrite &= (pte & 2) != 0;
            allowUser &= (pte & 4) != 0;
            CheckAccess(la, access, user, allowWrite, allowUser, false);
            SetAccessedDirty(pteAddr, pte, write, 4);
            _walkGlobal = pge && (pte & 0x100) != 0;
            return (pte & 0xFFFF_F000UL) | (la & 0xFFF);
        }
    }

    private void CheckAccess(ulong la, int access, bool user, bool allowWrite, bool allowUser, bool noExec)
    {
        if (user && !allowUser) throw PageFault(la, access, user, false, present: true);
        if (access == AccWrite && !allowWrite && (user || (Cr0 & Cr0Wp) != 0)) throw PageFault(la, access, user, false, present: true);
        if (access == AccFetch && noExec) throw PageFault(la, access, user, false, present: true);
        // SMEP: the kernel never executes code from a page user mode can reach.
        if (access == AccFetch && !user && allowUser && (Cr4 & Cr4Smep) != 0) throw PageFault(la, access, user, false, present: true);
        // SMAP: nor touches its data, unless it opened the window with STAC (RFLAGS.AC) at CPL < 3; a supervisor
        // access made while CPL is 3 is an implicit one (descriptor tables...), which AC never allows.
        if (access != AccFetch && !user && allowUser && (Cr4 & Cr4Smap) != 0 && ((FlOther & AC) == 0 || Cpl == 3))
            throw PageFault(la, access, user, false, present: true);
        _walkUserPage = allowUser;
    }

    private void SetAccessedDirty(ulong entryPa, ulong e, bool dirty, int size)
    {
        ulong want = 0x20 | (dirty ? 0x40UL : 0);
        if ((e & want) == want) return;
        var r = FindRam(entryPa);
        if (r is null || !r.Contains(entryPa, (ulong)size)) return;
        byte* p = r.Host + (entryPa - r.GuestBase);
        // Atomic so concurrent walks on other vCPUs never lose a bit the guest itself is clearing or setting.
        if (size == 8) Interlocked.Or(ref *(ulong*)p, want);
        else Interlocked.Or(ref *(uint*)p, (uint)want);
        r.Dirty.MarkRange(entryPa - r.GuestBase, (ulong)size);
        if (_cache.IsCodePage(entryPa)) _cache.InvalidatePage(entryPa);
    }

    private CpuFaultException PageFault(ulong la, int access, bool user, bool reserved, bool present = false, bool protectionKey = false)
    {
        uint err = (present || reserved ? 1u : 0) | (access == AccWrite ? 2u : 0) | (user ? 4u : 0) | (reserved ? 8u : 0)
                   | (protectionKey ? PageFaultPk : 0)
                   | (access == AccFetch && ((Efer & EferNxe) != 0 || (Cr4 & Cr4Smep) != 0) ? 0x10u : 0);
        Cr2 = la;
        return Fault(14, err, true);
    }
}
