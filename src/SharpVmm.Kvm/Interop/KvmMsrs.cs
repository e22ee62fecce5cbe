using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary>Header of <c>struct kvm_msrs</c>; <see cref="KvmMsrEntry"/> items follow at offset 8.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmMsrs
{
    public uint NMsrs;
    public uint Pad;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmMsrEntry
{
    public uint Index;
    public uint Reserved;
    public ulong Data;
}

/// <summary>Header of <c>struct kvm_msr_list</c>; u32 indices follow at offset 4.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmMsrList
{
    public uint NMsrs;
}
