using SharpVmm.Memory;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>
/// The page walk: 4-level, PAE and 32-bit paging, the U/S, R/W, XD, SMEP, SMAP and protection-key checks, and the
/// accessed/dirty bits, as hardware does them. A refusal is a #PF with CR2 set.
/// </summary>
internal sealed unsafe partial class Mmu
{
    public const uint PageFaultPk = 1u << 5;

    /// <summary>The last walk ended in a global leaf (G bit with CR4.PGE).</summary>
    public bool WalkGlobal { get; private set; }
    /// <summary>The last walk ended on a page user mode may access (U/S set at every level).</summary>
    public bool WalkUserPage { get; private set; }
    /// <summary>The page last walked has a protection key with a PKRU restriction: it is never cached.</summary>
    public bool WalkKeyRestricted { get; private set; }
    /// <summary>CR4.SMAP during the last walk.</summary>
    private bool _walkSmap;

    /// <summary>
    /// Translates a linear address, checking permissions for <paramref name="access"/> (a supervisor access when
    /// <paramref name="user"/> is false, whatever the CPL) and setting accessed/dirty bits as hardware does. Throws
    /// #PF (with CR2 set) on failure, #GP for a non-canonical address in long mode.
    /// </summary>
    public ulong Translate(in PagingState s, ulong la, int access, bool user)
    {
        WalkGlobal = false;
        WalkUserPage = false;
        WalkKeyRestricted = false;
        if ((s.Cr0 & Cr0Pg) == 0) return la & 0xFFFF_FFFF;
        _walkSmap = (s.Cr4 & Cr4Smap) != 0;
        // Only the slow path gets here (TLB tags are canonical addresses), so the check costs hits nothing.
        if ((s.Efer & EferLma) != 0 && !X86Cpu.IsCanonical(la))
        {
            var f = _fault.Set(13, 0, true);
            f.NonCanonical = true;
            throw f;
        }
        bool pge = (s.Cr4 & Cr4Pge) != 0;
        bool nxe = (s.Efer & EferNxe) != 0;
        bool write = access == AccWrite;
        ulong pa;
        bool allowWrite = true, allowUser = true, noExec = false;
        // Physical-address bits above MAXPHYADDR (40, CPUID 0x80000008) and XD without EFER.NXE are reserved.
        ulong reserved = 0x000F_FF00_0000_0000UL | (nxe ? 0 : 1UL << 63);
        if ((s.Efer & EferLma) != 0)
        {
            // 4-level paging.
            ulong table = s.Cr3 & 0x000F_FFFF_FFFF_F000UL;
            int level = 4;
            while (true)
            {
                int shift = 12 + 9 * (level - 1);
                ulong entryPa = table + (((la >> shift) & 0x1FF) << 3);
                ulong e = ReadEntry(entryPa, 8);
                if ((e & 1) == 0) throw PageFault(s, la, access, user, false);
                allowWrite &= (e & 2) != 0;
                allowUser &= (e & 4) != 0;
                noExec |= nxe && (long)e < 0;
                bool leaf = level == 1 || ((e & 0x80) != 0 && level <= 3);
                if ((e & 0x80) != 0 && level == 4) throw PageFault(s, la, access, user, true);
                if ((e & reserved) != 0 || (leaf && level > 1 && (e & ((1UL << shift) - 1) & ~0x1FFFUL) != 0))
                    throw PageFault(s, la, access, user, true);
                if (leaf)
                {
                    CheckAccess(s, la, access, user, allowWrite, allowUser, noExec);
                    if (allowUser) CheckProtectionKey(s, la, access, user, e);
                    SetAccessedDirty(entryPa, e, write, 8);
                    if (level > 1) _hasLarge = true;
                    WalkGlobal = pge && (e & 0x100) != 0;
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
        if ((s.Cr4 & Cr4Pae) != 0)
        {
            // PAE paging: PDPT of 4 entries, then 2 levels of 64-bit entries.
            ulong pdpteAddr = (s.Cr3 & 0xFFFF_FFE0UL) + ((la >> 30) << 3);
            ulong pdpte = ReadEntry(pdpteAddr, 8);
            if ((pdpte & 1) == 0) throw PageFault(s, la, access, user, false);
            ulong table = pdpte & 0x000F_FFFF_FFFF_F000UL;
            for (int level = 2; level >= 1; level--)
            {
                int shift = 12 + 9 * (level - 1);
                ulong entryPa = table + (((la >> shift) & 0x1FF) << 3);
                ulong e = ReadEntry(entryPa, 8);
                if ((e & 1) == 0) throw PageFault(s, la, access, user, false);
                if ((e & reserved) != 0 || (level == 2 && (e & 0x80) != 0 && (e & 0x1F_E000UL) != 0)) throw PageFault(s, la, access, user, true);
                allowWrite &= (e & 2) != 0;
                allowUser &= (e & 4) != 0;
                noExec |= nxe && (long)e < 0;
                if (level == 1 || (e & 0x80) != 0)
                {
                    CheckAccess(s, la, access, user, allowWrite, allowUser, noExec);
                    SetAccessedDirty(entryPa, e, write, 8);
                    if (level > 1) _hasLarge = true;
                    WalkGlobal = pge && (e & 0x100) != 0;
                    ulong pageMask = (1UL << shift) - 1;
                    return (e & 0x000F_FFFF_FFFF_F000UL & ~pageMask) | (la & pageMask);
                }
                if ((e & 0x20) == 0) SetAccessedDirty(entryPa, e, false, 8);
                table = e & 0x000F_FFFF_FFFF_F000UL;
            }
        }
        // 32-bit paging with optional 4 MiB pages.
        {
            ulong pdeAddr = (s.Cr3 & 0xFFFF_F000UL) + ((la >> 22) << 2);
            ulong pde = ReadEntry(pdeAddr, 4);
            if ((pde & 1) == 0) throw PageFault(s, la, access, user, false);
            allowWrite &= (pde & 2) != 0;
            allowUser &= (pde & 4) != 0;
            if ((pde & 0x80) != 0 && (s.Cr4 & Cr4Pse) != 0)
            {
                CheckAccess(s, la, access, user, allowWrite, allowUser, false);
                SetAccessedDirty(pdeAddr, pde, write, 4);
                _hasLarge = true;
                WalkGlobal = pge && (pde & 0x100) != 0;
                return (pde & 0xFFC0_0000UL) | ((pde >> 13 & 0xFF) << 32) | (la & 0x3F_FFFF);
            }
            if ((pde & 0x20) == 0) SetAccessedDirty(pdeAddr, pde, false, 4);
            ulong pteAddr = (pde & 0xFFFF_F000UL) + (((la >> 12) & 0x3FF) << 2);
            ulong pte = ReadEntry(pteAddr, 4);
            if ((pte & 1) == 0) throw PageFault(s, la, access, user, false);
            allowWrite &= (pte & 2) != 0;
            allowUser &= (pte & 4) != 0;
            CheckAccess(s, la, access, user, allowWrite, allowUser, false);
            SetAccessedDirty(pteAddr, pte, write, 4);
            WalkGlobal = pge && (pte & 0x100) != 0;
            return (pte & 0xFFFF_F000UL) | (la & 0xFFF);
        }
    }

    private void CheckAccess(in PagingState s, ulong la, int access, bool user, bool allowWrite, bool allowUser, bool noExec)
    {
        if (user && !allowUser) throw PageFault(s, la, access, user, false, present: true);
        if (access == AccWrite && !allowWrite && (user || (s.Cr0 & Cr0Wp) != 0)) throw PageFault(s, la, access, user, false, present: true);
        if (access == AccFetch && noExec) throw PageFault(s, la, access, user, false, present: true);
        // SMEP: the kernel never executes code from a page user mode can reach.
        if (access == AccFetch && !user && allowUser && (s.Cr4 & Cr4Smep) != 0) throw PageFault(s, la, access, user, false, present: true);
        // SMAP: nor touches its data, unless it opened the window with STAC (RFLAGS.AC) at CPL < 3; a supervisor
        // access made while CPL is 3 is an implicit one (descriptor tables...), which AC never allows.
        if (access != AccFetch && !user && allowUser && (s.Cr4 & Cr4Smap) != 0 && (!s.Ac || s.Cpl == 3))
            throw PageFault(s, la, access, user, false, present: true);
        WalkUserPage = allowUser;
    }

    /// <summary>
    /// Protection keys for user pages (SDM vol. 3, 4.6.2): with CR4.PKE and 4-level paging, bits 62:59 of a leaf
    /// entry name one of 16 keys, and PKRU holds two bits per key: AD forbids data accesses, WD forbids writes
    /// (user-mode writes, and supervisor writes when CR0.WP is set). Fetches are never affected. Called for a leaf
    /// user mode may access once the ordinary checks passed. A key with any restriction is never cached, so every
    /// access to its pages walks and comes here.
    /// </summary>
    private void CheckProtectionKey(in PagingState s, ulong la, int access, bool user, ulong entry)
    {
        if ((s.Cr4 & Cr4Pke) == 0) return;
        int key = (int)(entry >> 59) & 0xF;
        uint rights = (s.Pkru >> (key * 2)) & 3;
        if (rights == 0) return;
        WalkKeyRestricted = true;
        if (access == AccFetch) return;
        bool accessDisabled = (rights & 1) != 0, writeDisabled = (rights & 2) != 0;
        if (accessDisabled || (access == AccWrite && writeDisabled && (user || (s.Cr0 & Cr0Wp) != 0)))
            throw PageFault(s, la, access, user, false, present: true, protectionKey: true);
    }

    private MemoryRegion? FindRam(ulong pa)
    {
        var regions = _regions;
        for (int i = 0; i < regions.Length; i++)
            if (regions[i].Contains(pa)) return regions[i];
        return null;
    }

    /// <summary>A page-table entry: from RAM, else through the I/O reader (never through the TLB).</summary>
    private ulong ReadEntry(ulong pa, int size)
    {
        var r = FindRam(pa);
        if (r is not null && r.Contains(pa, (ulong)size))
        {
            byte* p = r.Host + (pa - r.GuestBase);
            return size == 8 ? *(ulong*)p : *(uint*)p;
        }
        return _readIo(pa, size);
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
        if (_code is not null && _code.IsCodePage(entryPa)) _code.InvalidatePage(entryPa);
    }

    private CpuFaultException PageFault(in PagingState s, ulong la, int access, bool user, bool reserved, bool present = false, bool protectionKey = false)
    {
        uint err = (present || reserved ? 1u : 0) | (access == AccWrite ? 2u : 0) | (user ? 4u : 0) | (reserved ? 8u : 0)
                   | (protectionKey ? PageFaultPk : 0)
                   | (access == AccFetch && ((s.Efer & EferNxe) != 0 || (s.Cr4 & Cr4Smep) != 0) ? 0x10u : 0);
        Cr2 = la;
        return _fault.Set(14, err, true);
    }
}
