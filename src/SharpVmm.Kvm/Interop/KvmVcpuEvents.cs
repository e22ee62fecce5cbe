using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary><c>struct kvm_vcpu_events</c> (x86).</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public struct KvmVcpuEvents
{
    public const uint ValidNmiPending = 1, ValidSipiVector = 2, ValidShadow = 4;
    public const byte ShadowMovSs = 1, ShadowSti = 2;

    [FieldOffset(0)] public byte ExceptionInjected;
    [FieldOffset(1)] public byte ExceptionNr;
    [FieldOffset(2)] public byte ExceptionHasErrorCode;
    [FieldOffset(3)] public byte ExceptionPending;
    [FieldOffset(4)] public uint ExceptionErrorCode;
    [FieldOffset(8)] public byte InterruptInjected;
    [FieldOffset(9)] public byte InterruptNr;
    [FieldOffset(10)] public byte InterruptSoft;
    [FieldOffset(11)] public byte InterruptShadow;
    [FieldOffset(12)] public byte NmiInjected;
    [FieldOffset(13)] public byte NmiPending;
    [FieldOffset(14)] public byte NmiMasked;
    [FieldOffset(16)] public uint SipiVector;
    [FieldOffset(20)] public uint Flags;
    [FieldOffset(24)] public byte SmiSmm;
    [FieldOffset(25)] public byte SmiPending;
    [FieldOffset(26)] public byte SmiInsideNmi;
    [FieldOffset(27)] public byte SmiLatchedInit;
    [FieldOffset(55)] public byte ExceptionHasPayload;
    [FieldOffset(56)] public ulong ExceptionPayload;
}

/// <summary><c>struct kvm_mp_state</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmMpState
{
    public const uint Runnable = 0, Uninitialized = 1, InitReceived = 2, Halted = 3, SipiReceived = 4;
    public uint MpState;
}
