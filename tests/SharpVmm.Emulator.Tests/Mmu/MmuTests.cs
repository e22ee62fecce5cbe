using SharpVmm.Memory;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator.Tests.Mmu;

/// <summary>
/// The MMU on its own, without a vCPU: page tables written straight into guest RAM, the paging controls given as a
/// <see cref="PagingState"/>. Walks of every paging mode and page size, the A/D bits they leave, the #PF error codes
/// and CR2 of each refusal (U/S, R/W with CR0.WP, XD, reserved bits, SMEP, SMAP, protection keys), and the TLB:
/// fills, the read/write split, global entries across a CR3 flush, INVLPG, and the SMAP window's parking.
/// </summary>
public unsafe class MmuTests
{
    private const ulong P = 1, W = 2, U = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100, XD = 1UL << 63;
    private const int Read = Emulator.Mmu.AccRead, Write = Emulator.Mmu.AccWrite, Fetch = Emulator.Mmu.AccFetch;

    // 4-level tables: PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000, PT at 0x4000.
    private const ulong Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000, Pt = 0x4000;

    /// <summary>Guest RAM and an MMU over it; faults land in <see cref="Fault"/>.</summary>
    private sealed class Rig : IDisposable
    {
        public readonly GuestMemory Memory = GuestMemory.Create(16 << 20);
        public readonly CpuFaultException Fault = new();
        public readonly Emulator.Mmu Mmu;

        public Rig() => Mmu = new Emulator.Mmu(Memory, Fault);

        public void Set(ulong pa, ulong entry) => Memory.Write(pa, entry);
        public void Set32(ulong pa, uint entry) => Memory.Write(pa, entry);
        public ulong Get(ulong pa) => Memory.Read<ulong>(pa);
        public uint Get32(ulong pa) => Memory.Read<uint>(pa);

        public byte* Host(ulong pa)
        {
            Assert.True(Memory.TryGetHostPointer(pa, 1, out byte* host));
            return host;
        }

        /// <summary>Walks <paramref name="la"/> and caches the result as the vCPU's slow path does.</summary>
        public void WalkAndFill(in PagingState s, ulong la, bool write, bool user = false)
        {
            ulong pa = Mmu.Translate(s, la, write ? Write : Read, user);
            Mmu.Fill(la, user ? 1UL : 0, write, Host(pa & ~0xFFFUL));
        }

        /// <summary>The #PF (or other fault) raised by a walk: vector, error code, and CR2.</summary>
        public (int Vector, uint Error, ulong Cr2) Refused(PagingState s, ulong la, int access, bool user)
        {
            Mmu.Cr2 = 0xDEAD;
            var f = Assert.Throws<CpuFaultException>(() => Mmu.Translate(s, la, access, user));
            Assert.Same(Fault, f);
            return (f.Vector, f.ErrorCode, Mmu.Cr2);
        }

        public void Dispose()
        {
            Mmu.Dispose();
            Memory.Dispose();
        }
    }

    private static PagingState LongMode(ulong cr4 = Cr4Pae, ulong efer = EferLme | EferLma | EferNxe) =>
        new() { Cr0 = Cr0Pg | Cr0Pe | Cr0Wp, Cr3 = Pml4, Cr4 = cr4, Efer = efer };

    /// <summary>PML4[0] → PDPT, PDPT[0] → PD, PD[2] → PT (linear 0x40_0000..0x60_0000), all present, writable, user.</summary>
    private static void MapUpperLevels(Rig r)
    {
        r.Set(Pml4, Pdpt | P | W | U);
        r.Set(Pdpt, Pd | P | W | U);
        r.Set(Pd + 2 * 8, Pt | P | W | U);
    }

    [Fact]
    public void FourLevelWalkOf4KPageSetsAccessedOnEveryLevelAndDirtyOnlyOnAWrittenLeaf()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt + 3 * 8, 0x10_0000 | P | W);
        var s = LongMode();

        Assert.Equal(0x10_0123UL, r.Mmu.Translate(s, 0x40_3123, Read, false));
        Assert.Equal(A, r.Get(Pml4) & (A | D));
        Assert.Equal(A, r.Get(Pdpt) & (A | D));
        Assert.Equal(A, r.Get(Pd + 2 * 8) & (A | D));
        Assert.Equal(A, r.Get(Pt + 3 * 8) & (A | D));

        Assert.Equal(0x10_0FF8UL, r.Mmu.Translate(s, 0x40_3FF8, Write, false));
        Assert.Equal(A | D, r.Get(Pt + 3 * 8) & (A | D));
        Assert.Equal(A, r.Get(Pd + 2 * 8) & (A | D));
    }

    [Fact]
    public void FourLevelWalkMaps2MAnd1GPagesAndRefusesReservedBitsInALargeLeaf()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pd + 3 * 8, 0xA0_0000 | P | W | PS);          // linear 0x60_0000 → 0xA0_0000, 2 MiB
        r.Set(Pdpt + 1 * 8, 0x8000_0000 | P | W | PS);      // linear 1 GiB → 2 GiB, 1 GiB
        r.Set(Pd + 4 * 8, 0xC0_0000 | 0x2000 | P | W | PS); // bit 13 is reserved in a 2 MiB leaf
        var s = LongMode();

        Assert.Equal(0xAA_BCDEUL, r.Mmu.Translate(s, 0x6A_BCDE, Write, false));
        Assert.Equal(A | D, r.Get(Pd + 3 * 8) & (A | D));
        Assert.Equal(0x8123_4567UL, r.Mmu.Translate(s, 0x4123_4567, Read, false));
        Assert.Equal(A, r.Get(Pdpt + 8) & (A | D));

        var f = r.Refused(s, 0x80_0010, Read, false);
        Assert.Equal((14, 0x9u, 0x80_0010UL), f); // present | reserved
    }

    [Fact]
    public void PaeWalkMaps4KAnd2MPages()
    {
        using var r = new Rig();
        const ulong pdpt = 0x5000, pd = 0x6000, pt = 0x7000;
        r.Set(pdpt, pd | P);
        r.Set(pd + 1 * 8, pt | P | W | U);
        r.Set(pt + 5 * 8, 0x20_0000 | P | W | U);
        r.Set(pd + 2 * 8, 0x80_0000 | P | W | PS);
        var s = new PagingState { Cr0 = Cr0Pg | Cr0Pe, Cr3 = pdpt, Cr4 = Cr4Pae };

        Assert.Equal(0x20_0ABCUL, r.Mmu.Translate(s, 0x20_5ABC, Write, true));
        Assert.Equal(A | D, r.Get(pt + 5 * 8) & (A | D));
        Assert.Equal(A, r.Get(pd + 8) & (A | D));
        Assert.Equal(0x80_1234UL, r.Mmu.Translate(s, 0x40_1234, Read, false));
        // Only the low 32 bits of the linear address count outside long mode.
        Assert.Equal(0x80_1234UL, r.Mmu.Translate(s, 0x1_0040_1234, Read, false));
        Assert.Equal((14, 0u, 0x60_0000UL), r.Refused(s, 0x60_0000, Read, false));
    }

    [Fact]
    public void ThirtyTwoBitWalkMaps4KPagesAnd4MPagesOnlyWithPse()
    {
        using var r = new Rig();
        const ulong pdir = 0x8000, pt = 0x9000;
        r.Set32(pdir + 1 * 4, (uint)(pt | P | W | U));
        r.Set32(pt + 2 * 4, (uint)(0x30_0000 | P | W | U));
        r.Set32(pdir + 2 * 4, (uint)(0x40_0000 | P | W | PS)); // a 4 MiB page at 4 MiB, or a table there without PSE
        r.Set32(0x40_0000 + 1 * 4, (uint)(0x50_0000 | P));
        var s = new PagingState { Cr0 = Cr0Pg | Cr0Pe, Cr3 = pdir };

        Assert.Equal(0x30_0010UL, r.Mmu.Translate(s, 0x40_2010, Write, false));
        Assert.Equal(A | D, r.Get32(pt + 8) & (A | D));
        Assert.Equal(A, r.Get32(pdir + 4) & (A | D));

        Assert.Equal(0x50_0777UL, r.Mmu.Translate(s, 0x80_1777, Read, false));
        s.Cr4 = Cr4Pse;
        Assert.Equal(0x40_1777UL, r.Mmu.Translate(s, 0x80_1777, Read, false));
    }

    [Fact]
    public void RefusalsGiveThePageFaultErrorCodeAndSetCr2()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt + 0 * 8, 0x10_0000 | P);              // supervisor, read-only
        r.Set(Pt + 1 * 8, 0x11_0000 | P | U);          // user, read-only
        r.Set(Pt + 2 * 8, 0x12_0000 | P | W | U | XD); // user, no execute
        r.Set(Pt + 4 * 8, 0x14_0000 | P | W | U | (1UL << 45)); // above MAXPHYADDR
        var s = LongMode();

        Assert.Equal((14, 0u, 0x40_5000UL), r.Refused(s, 0x40_5000, Read, false));          // not present
        Assert.Equal((14, 6u, 0x40_5008UL), r.Refused(s, 0x40_5008, Write, true));          // not present, user write
        Assert.Equal((14, 5u, 0x40_0010UL), r.Refused(s, 0x40_0010, Read, true));           // user on a supervisor page
        Assert.Equal((14, 7u, 0x40_1000UL), r.Refused(s, 0x40_1000, Write, true));          // user write, read-only
        Assert.Equal((14, 3u, 0x40_1000UL), r.Refused(s, 0x40_1000, Write, false));         // supervisor write under CR0.WP
        Assert.Equal((14, 0x15u, 0x40_2000UL), r.Refused(s, 0x40_2000, Fetch, true));       // fetch from an XD page
        Assert.Equal((14, 0xDu, 0x40_4000UL), r.Refused(s, 0x40_4000, Read, true));         // reserved address bit

        s.Cr0 &= ~Cr0Wp;
        Assert.Equal(0x11_0000UL, r.Mmu.Translate(s, 0x40_1000, Write, false));
        // Without EFER.NXE the XD bit is reserved, and a fetch's error code has no I/D bit.
        s.Efer &= ~EferNxe;
        Assert.Equal((14, 0xDu, 0x40_2000UL), r.Refused(s, 0x40_2000, Fetch, true));
    }

    [Fact]
    public void NonCanonicalAddressInLongModeIsAGeneralProtectionFault()
    {
        using var r = new Rig();
        var f = Assert.Throws<CpuFaultException>(() => r.Mmu.Translate(LongMode(), 0x0000_8000_0000_0000, Read, false));
        Assert.Equal(13, f.Vector);
        Assert.True(f.NonCanonical);
    }

    [Fact]
    public void PagingOffMapsTheLow32BitsOneToOne()
    {
        using var r = new Rig();
        var s = new PagingState { Cr0 = Cr0Pe };
        Assert.Equal(0x1234_5678UL, r.Mmu.Translate(s, 0x9_1234_5678, Write, true));
    }

    [Fact]
    public void SmepRefusesSupervisorFetchesFromUserPages()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt, 0x10_0000 | P | U);
        r.Set(Pt + 8, 0x11_0000 | P);
        var s = LongMode(Cr4Pae | Cr4Smep);

        Assert.Equal((14, 0x11u, 0x40_0000UL), r.Refused(s, 0x40_0000, Fetch, false));
        Assert.Equal(0x11_0000UL, r.Mmu.Translate(s, 0x40_1000, Fetch, false));
        Assert.Equal(0x10_0000UL, r.Mmu.Translate(s, 0x40_0000, Fetch, true));
        s.Cr4 = Cr4Pae;
        Assert.Equal(0x10_0000UL, r.Mmu.Translate(s, 0x40_0000, Fetch, false));
    }

    [Fact]
    public void SmapRefusesSupervisorDataAccessToUserPagesUnlessAcAtCplBelow3()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt, 0x10_0000 | P | W | U);
        var s = LongMode(Cr4Pae | Cr4Smap);

        Assert.Equal((14, 1u, 0x40_0000UL), r.Refused(s, 0x40_0000, Read, false));
        Assert.Equal((14, 3u, 0x40_0008UL), r.Refused(s, 0x40_0008, Write, false));
        s.Ac = true;
        Assert.Equal(0x10_0000UL, r.Mmu.Translate(s, 0x40_0000, Write, false));
        s.Cpl = 3; // an implicit supervisor access (a descriptor table read from user mode): AC does not help
        Assert.Equal((14, 1u, 0x40_0000UL), r.Refused(s, 0x40_0000, Read, false));
        Assert.Equal(0x10_0000UL, r.Mmu.Translate(s, 0x40_0000, Read, true));
    }

    [Fact]
    public void ProtectionKeysRestrictUserPageDataAndSuchPagesAreNeverCached()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt, 0x10_0000 | P | W | U | (5UL << 59)); // key 5
        r.Set(Pt + 8, 0x11_0000 | P | W | U);           // key 0
        var s = LongMode(Cr4Pae | Cr4Pke);
        s.Pkru = 1u << 10; // key 5: access disabled

        Assert.Equal((14, 0x25u, 0x40_0000UL), r.Refused(s, 0x40_0000, Read, true));
        Assert.Equal((14, 0x21u, 0x40_0000UL), r.Refused(s, 0x40_0000, Read, false));
        Assert.Equal(0x10_0000UL, r.Mmu.Translate(s, 0x40_0000, Fetch, true));

        s.Pkru = 2u << 10; // key 5: write disabled
        Assert.Equal((14, 0x27u, 0x40_0004UL), r.Refused(s, 0x40_0004, Write, true));
        r.WalkAndFill(s, 0x40_0000, write: false, user: true);
        Assert.True(r.Mmu.WalkKeyRestricted);
        Assert.True(r.Mmu.Lookup(0x40_0000, 1, false) == null);
        r.WalkAndFill(s, 0x40_1000, write: false, user: true);
        Assert.True(r.Mmu.Lookup(0x40_1000, 1, false) == r.Host(0x11_0000));

        s.Cr4 = Cr4Pae; // keys count only with CR4.PKE
        s.Pkru = 3u << 10;
        Assert.Equal(0x10_0000UL, r.Mmu.Translate(s, 0x40_0000, Write, true));
    }

    [Fact]
    public void FillsGoToTheReadOrWriteSetOfTheirPrivilege()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt, 0x10_0000 | P | W | U);
        var s = LongMode();

        Assert.True(r.Mmu.Lookup(0x40_0010, 0, false) == null);
        r.WalkAndFill(s, 0x40_0000, write: false);
        Assert.True(r.Mmu.Lookup(0x40_0010, 0, false) == r.Host(0x10_0010));
        Assert.True(r.Mmu.Lookup(0x40_0010, 0, true) == null);
        Assert.True(r.Mmu.Lookup(0x40_0010, 1, false) == null);
        // The slot is direct-mapped: another page with the same index is a miss, not a wrong hit.
        Assert.True(r.Mmu.Lookup(0x40_0010 + Emulator.Mmu.TlbSize * 0x1000UL, 0, false) == null);
        r.WalkAndFill(s, 0x40_0000, write: true, user: true);
        Assert.True(r.Mmu.Lookup(0x40_0FFF, 1, true) == r.Host(0x10_0FFF));
    }

    [Fact]
    public void GlobalEntriesSurviveANonGlobalFlushOnlyWithPge()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt, 0x10_0000 | P | W | G);
        r.Set(Pt + 8, 0x11_0000 | P | W);
        var s = LongMode(Cr4Pae | Cr4Pge);

        r.WalkAndFill(s, 0x40_0000, write: false);
        Assert.True(r.Mmu.WalkGlobal);
        r.WalkAndFill(s, 0x40_0000, write: true);
        r.WalkAndFill(s, 0x40_1000, write: false);
        Assert.False(r.Mmu.WalkGlobal);

        r.Mmu.FlushNonGlobal(pge: true);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, false) != null);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, true) != null);
        Assert.True(r.Mmu.Lookup(0x40_1000, 0, false) == null);

        r.Mmu.FlushNonGlobal(pge: false);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, false) == null);

        // The G bit means nothing without CR4.PGE.
        r.WalkAndFill(s with { Cr4 = Cr4Pae }, 0x40_0000, write: false);
        Assert.False(r.Mmu.WalkGlobal);
        r.Mmu.FlushNonGlobal(pge: true);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, false) == null);
    }

    [Fact]
    public void InvalidatePageDropsOnePageOrEverythingOnceALargePageIsCached()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt, 0x10_0000 | P | W | G);
        r.Set(Pt + 8, 0x11_0000 | P | W);
        r.Set(Pd + 3 * 8, 0xA0_0000 | P | W | PS);
        var s = LongMode(Cr4Pae | Cr4Pge);

        r.WalkAndFill(s, 0x40_0000, write: false);
        r.WalkAndFill(s, 0x40_0000, write: true);
        r.WalkAndFill(s, 0x40_1000, write: false);
        r.Mmu.InvalidatePage(0x40_0123); // global or not, INVLPG drops it from both sets
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, false) == null);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, true) == null);
        Assert.True(r.Mmu.Lookup(0x40_1000, 0, false) != null);

        r.WalkAndFill(s, 0x60_0000, write: false);
        r.Mmu.InvalidatePage(0x60_0000);
        Assert.True(r.Mmu.Lookup(0x40_1000, 0, false) == null);

        // After a full flush the next INVLPG is precise again.
        r.WalkAndFill(s, 0x40_0000, write: false);
        r.WalkAndFill(s, 0x40_1000, write: false);
        r.Mmu.InvalidatePage(0x40_1000);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, false) != null);
    }

    [Fact]
    public void FlushWriteSetKeepsReadEntries()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt, 0x10_0000 | P | W);
        var s = LongMode();
        r.WalkAndFill(s, 0x40_0000, write: false);
        r.WalkAndFill(s, 0x40_0000, write: true);
        r.Mmu.FlushWriteSet();
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, false) != null);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, true) == null);
        r.Mmu.FlushAll();
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, false) == null);
    }

    [Fact]
    public void SmapWindowEntriesLeaveAtCloseAndComeBackAtOpenUnlessFlushedBetween()
    {
        using var r = new Rig();
        MapUpperLevels(r);
        r.Set(Pt, 0x10_0000 | P | W | U);
        var s = LongMode(Cr4Pae | Cr4Smap) with { Ac = true };

        r.WalkAndFill(s, 0x40_0000, write: true);
        Assert.True(r.Mmu.HasSmapWindowEntries);
        r.Mmu.CloseSmapWindow(ac: true); // AC still set: nothing to do
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, true) != null);

        r.Mmu.CloseSmapWindow(ac: false);
        Assert.False(r.Mmu.HasSmapWindowEntries);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, true) == null);
        r.Mmu.OpenSmapWindow(smap: true);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, true) == r.Host(0x10_0000));

        r.Mmu.CloseSmapWindow(ac: false);
        r.Mmu.InvalidatePage(0x50_0000); // any invalidation makes the parked entries stale
        r.Mmu.OpenSmapWindow(smap: true);
        Assert.True(r.Mmu.Lookup(0x40_0000, 0, true) == null);

        // Without SMAP a supervisor entry for a user page is an ordinary one.
        r.WalkAndFill(s with { Cr4 = Cr4Pae }, 0x40_0000, write: true);
        Assert.False(r.Mmu.HasSmapWindowEntries);
    }
}
