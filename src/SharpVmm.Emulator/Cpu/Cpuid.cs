using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>
/// The CPU model guests see. It advertises exactly what this emulator implements: an Intel family-6 CPU with x86-64, NX, SSE/SSE2, CX8/CX16, CMOV, FXSR, PAT, PGE, PSE/PSE36, 1 GiB pages,
/// SYSCALL/SYSENTER, RDTSCP, RDPID, IA32_ARCH_CAPABILITIES (immune to Meltdown, MDS and their kin), POPCNT, MOVBE, LZCNT (ABM), BMI1, LAHF in 64-bit mode,
/// an invariant TSC, SMEP, SMAP, UMIP, PCID with INVPCID, CLFLUSHOPT/CLWB, PKU, and (with a local APIC) x2APIC and the TSC-deadline timer.
/// It hides AVX, SSE3 and later. XSAVE/XSAVEOPT manage x87, SSE and PKRU state.
/// With <see cref="HypervisorLeaves"/> (the default; CpuidHypervisor.cs) it says it is a virtual machine: the
/// hypervisor bit and KVM's paravirtual leaves, with no paravirtual features but the I/O-delay hint.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    public const uint Leaf1Edx =
        (1u << 0)   // FPU
        | (1u << 2)  // DE
        | (1u << 3)  // PSE
        | (1u << 4)  // TSC
        | (1u << 5)  // MSR
        | (1u << 6)  // PAE
        | (1u << 7)  // MCE
        | (1u << 8)  // CX8
        | (1u << 11) // SEP
        | (1u << 12) // MTRR
        | (1u << 13) // PGE
        | (1u << 14) // MCA
        | (1u << 15) // CMOV
        | (1u << 16) // PAT
        | (1u << 17) // PSE36
        | (1u << 19) // CLFSH
        | (1u << 23) // MMX
        | (1u << 24) // FXSR
        | (1u << 25) // SSE
        | (1u << 26); // SSE2

    public const uint Leaf1Ecx =
        (1u << 13)   // CX16
        | (1u << 17) // PCID (not used to tag the TLB: a CR3 write always drops non-global entries, which is allowed)
        | (1u << 22) // MOVBE
        | (1u << 23); // POPCNT

    /// <summary>XSAVE (bit 26); OSXSAVE (bit 27) mirrors CR4.OSXSAVE.</summary>
    public const uint Leaf1EcxXsave = 1u << 26, Leaf1EcxOsxsave = 1u << 27;

    /// <summary>The local APIC's timer has the TSC-deadline mode (IA32_TSC_DEADLINE); advertised only with an APIC.</summary>
    public const uint Leaf1EcxTscDeadline = 1u << 24;

    /// <summary>The local APIC has x2APIC mode (IA32_APIC_BASE.EXTD, registers as MSRs 0x800-0x8FF); only with an APIC.</summary>
    public const uint Leaf1EcxX2Apic = 1u << 21;

    public const uint Leaf7Ebx =
        (1u << 3)    // BMI1
        | (1u << 7)  // SMEP
        | (1u << 10) // INVPCID
        | (1u << 20) // SMAP (with STAC/CLAC)
        | (1u << 23) // CLFLUSHOPT
        | (1u << 24); // CLWB

    public const uint Leaf7Ecx =
        (1u << 2)    // UMIP
        | (1u << 3)  // PKU (protection keys for user pages, RDPKRU/WRPKRU)
        | (1u << 22); // RDPID

    /// <summary>OSPKE (leaf 7 ECX bit 4) mirrors CR4.PKE.</summary>
    public const uint Leaf7EcxOspke = 1u << 4;

    /// <summary>
    /// IA32_ARCH_CAPABILITIES is readable. An interpreter never speculates, so it can truthfully say it is immune to
    /// the speculative-execution flaws the MSR has "not affected" bits for; without it, Linux assumes an Intel CPU is
    /// affected and turns on page-table isolation (a CR3 write, hence a TLB and jump-cache flush, on every kernel
    /// entry and exit) and a VERW buffer clear on every return to user mode.
    /// </summary>
    public const uint Leaf7Edx = 1u << 29;

    public const uint MsrArchCapabilities = 0x10A;

    public const ulong ArchCapabilities =
        (1UL << 0)    // RDCL_NO: no Meltdown (rogue data cache load), hence no L1TF either
        | (1UL << 4)  // SSB_NO: no speculative store bypass
        | (1UL << 5)  // MDS_NO
        | (1UL << 6)  // IF_PSCHANGE_MC_NO: no machine check on instruction-fetch page-size changes
        | (1UL << 8)  // TAA_NO
        | (1UL << 13) // SBDR_SSDP_NO
        | (1UL << 14) // FBSDP_NO
        | (1UL << 15) // PSDP_NO
        | (1UL << 20) // BHI_NO
        | (1UL << 24) // PBRSB_NO
        | (1UL << 26) // GDS_NO
        | (1UL << 27)  // RFDS_NO
        | (1UL << 62); // ITS_NO: no Indirect Target Selection (else Linux sends every kernel RET through a thunk)

    public const uint Ext1Edx = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29); // SYSCALL, NX, 1 GiB pages, RDTSCP, LM
    public const uint Ext1Ecx = (1u << 0) | (1u << 5);                            // LAHF_LM, ABM (LZCNT)

    public void Cpuid()
    {
        uint leaf = (uint)R[0], sub = (uint)R[1];
        uint a = 0, b = 0, c = 0, d = 0;
        switch (leaf)
        {
            case 0:
                a = 0xD;
                b = 0x756E_6547; d = 0x4965_6E69; c = 0x6C65_746E; // "GenuineIntel"
                break;
            case 1:
                a = 0x0006_0663; // family 6, model 0x66 (no errata quirks keyed on it), stepping 3
                b = (8u << 8) | (1u << 16) | ((uint)Index << 24); // CLFLUSH line 64 bytes, 1 logical CPU, APIC ID
                c = Leaf1Ecx | Leaf1EcxXsave | (_apic is not null ? Leaf1EcxTscDeadline | Leaf1EcxX2Apic : 0) | ((Cr4 & Cr4Osxsave) != 0 ? Leaf1EcxOsxsave : 0);
                d = Leaf1Edx | (_apic is not null ? 1u << 9 : 0);
                if (HypervisorLeaves) c |= Leaf1EcxHypervisor;
                break;
            case 2:
                a = 1; // one descriptor round, no descriptors
                break;
            case 4:
                break; // no deterministic cache leaves
            case 7:
                // Structured extended features, subleaf 0 only: BMI1 (ANDN, BEXTR, BLSI, BLSMSK, BLSR, TZCNT), SMEP,
                // INVPCID, SMAP, CLFLUSHOPT, CLWB; ECX: UMIP, RDPID. No BMI2/AVX2/ERMS... EDX: IA32_ARCH_CAPABILITIES.
                if (sub == 0) { b = Leaf7Ebx; c = Leaf7Ecx | ((Cr4 & Cr4Pke) != 0 ? Leaf7EcxOspke : 0); d = Leaf7Edx; }
                break;
            case 0xD:
                // XSAVE state: sub-leaf 0 gives the supported components (x87, SSE, PKRU) and the area sizes (for
                // what XCR0 enables now, and for everything); sub-leaf 1 advertises XSAVEOPT and nothing else;
                // sub-leaf 9 places PKRU (8 bytes) right after the header.
                if (sub == 0) { a = (uint)XcrSupported; b = XsaveAreaSizeFor(Xcr0); c = XsaveAreaSizeFor(XcrSupported); }
                else if (sub == 1) a = 1;
                else if (sub == XcrPkruBit) { a = 8; b = XsavePkruOffset; }
                break;
            case HypervisorBaseLeaf:
            case HypervisorFeaturesLeaf:
                if (HypervisorLeaves) HypervisorLeaf(leaf, out a, out b, out c, out d);
                break;
            case 0x8000_0000:
                a = 0x8000_0008;
                break;
            case 0x8000_0001:
                c = Ext1Ecx;
                d = Ext1Edx;
                break;
            case 0x8000_0002:
            case 0x8000_0003:
            case 0x8000_0004:
            {
                var brand = "SharpVmm emulated x86-64 CPU\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"u8;
                int o = (int)(leaf - 0x8000_0002) * 16;
                a = BitConverter.ToUInt32(brand[o..]);
                b = BitConverter.ToUInt32(brand[(o + 4)..]);
                c = BitConverter.ToUInt32(brand[(o + 8)..]);
                d = BitConverter.ToUInt32(brand[(o + 12)..]);
                break;
            }
            case 0x8000_0006:
                c = (64u << 0) | (8u << 12) | (256u << 16); // 256 KiB L2, 8-way, 64-byte lines
                break;
            case 0x8000_0007:
                d = 1u << 8; // invariant TSC: RDTSC follows the host's monotonic clock
                break;
            case 0x8000_0008:
                a = 0x3028; // 40 physical, 48 linear address bits
                break;
            default:
                _ = sub;
                break;
        }
        R[0] = a; R[3] = b; R[1] = c; R[2] = d;
    }
}
