using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>
/// Protection keys for user pages (SDM vol. 3, 4.6.2): with CR4.PKE and 4-level paging, bits 62:59 of a leaf entry
/// name one of 16 keys, and PKRU holds two bits per key: AD forbids data accesses, WD forbids writes (user-mode
/// writes, and supervisor writes when CR0.WP is set). They restrict only data accesses to user-mode pages (from any
/// CPL); instruction fetches and supervisor pages are never affected. A violation is a #PF with error-code bit 5.
///
/// The TLB and PKRU: a translation whose key has any PKRU bit set is never cached, so the fast paths (the
/// interpreter's and the JIT's inline probe, which share the TLB arrays) only ever hit pages their key leaves
/// unrestricted; every access to a restricted page walks and is checked by the MMU (Mmu/PageWalk.cs). When WRPKRU or XRSTOR adds a
/// restriction, the TLB is flushed, since pages of that key may be cached; lifting one needs nothing.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    public uint Pkru;

    private void RequirePke()
    {
        if ((Cr4 & Cr4Pke) == 0) throw Ud();
    }

    public uint Rdpkru(uint ecx)
    {
        RequirePke();
        if (ecx != 0) throw Gp();
        return Pkru;
    }

    public void Wrpkru(uint ecx, uint edx, uint eax)
    {
        RequirePke();
        if (ecx != 0 || edx != 0) throw Gp();
        SetPkru(eax);
    }

    /// <summary>Loads PKRU (WRPKRU, XRSTOR, state import), flushing the TLB if a key lost rights it had.</summary>
    public void SetPkru(uint value)
    {
        uint tightened = value & ~Pkru;
        Pkru = value;
        if (tightened != 0) FlushTlb();
    }
}
