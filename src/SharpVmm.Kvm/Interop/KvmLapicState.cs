using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary><c>struct kvm_lapic_state</c>: the first 1 KiB of the APIC register page.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmLapicState
{
    public const int Size = 1024;
    public fixed byte Regs[Size];
}
