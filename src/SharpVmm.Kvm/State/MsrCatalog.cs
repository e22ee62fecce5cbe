namespace SharpVmm.Kvm.State;

/// <summary>
/// The MSRs a vCPU snapshot carries beyond EFER and APIC_BASE (which live in kvm_sregs and have their own
/// VcpuState fields). Only those KVM lists in KVM_GET_MSR_INDEX_LIST are saved on a given host.
/// </summary>
public static class MsrCatalog
{
    public const uint Tsc = 0x10;
    public const uint ApicBase = 0x1B;
    public const uint SysenterCs = 0x174, SysenterEsp = 0x175, SysenterEip = 0x176;
    public const uint MiscEnable = 0x1A0;
    public const uint Pat = 0x277;
    public const uint TscDeadline = 0x6E0;
    public const uint Efer = 0xC000_0080;
    public const uint Star = 0xC000_0081, Lstar = 0xC000_0082, Cstar = 0xC000_0083, Sfmask = 0xC000_0084;
    public const uint KernelGsBase = 0xC000_0102, TscAux = 0xC000_0103;
    public const uint KvmWallClockNew = 0x4B56_4D00, KvmSystemTimeNew = 0x4B56_4D01, KvmAsyncPfEn = 0x4B56_4D02,
        KvmStealTime = 0x4B56_4D03, KvmPvEoiEn = 0x4B56_4D04;

    /// <summary>Saved when KVM supports them. TSC first so a restore sets it before the deadline that depends on it.</summary>
    public static ReadOnlySpan<uint> Saved =>
    [
        Tsc, SysenterCs, SysenterEsp, SysenterEip, MiscEnable, Pat, TscDeadline,
        Star, Lstar, Cstar, Sfmask, KernelGsBase, TscAux,
        KvmWallClockNew, KvmSystemTimeNew, KvmAsyncPfEn, KvmStealTime, KvmPvEoiEn,
    ];

    /// <summary>MSRs whose values are separate VcpuState fields and so never appear in VcpuState.Msrs.</summary>
    public static bool HasOwnField(uint index) => index is Efer or ApicBase;
}
