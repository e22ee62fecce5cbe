using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary>Header of <c>struct kvm_cpuid2</c>; <see cref="KvmCpuidEntry2"/> items follow at offset 8.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmCpuid2
{
    public uint NEnt;
    public uint Padding;
}

/// <summary><c>struct kvm_cpuid_entry2</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmCpuidEntry2
{
    /// <summary>KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry applies to one <see cref="Index"/> (subleaf) only.</summary>
    public const uint FlagSignificantIndex = 1;
    public uint Function;
    public uint Index;
    public uint Flags;
    public uint Eax, Ebx, Ecx, Edx;
    public fixed uint Padding[3];
}
