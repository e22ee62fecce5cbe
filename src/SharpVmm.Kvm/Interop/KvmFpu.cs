using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary><c>struct kvm_fpu</c>: the FXSAVE view of x87/SSE state (ftwx is the abridged tag word).</summary>
[StructLayout(LayoutKind.Explicit, Size = 416)]
public unsafe struct KvmFpu
{
    [FieldOffset(0)] public fixed byte Fpr[8 * 16];
    [FieldOffset(128)] public ushort Fcw;
    [FieldOffset(130)] public ushort Fsw;
    [FieldOffset(132)] public byte Ftwx;
    [FieldOffset(134)] public ushort LastOpcode;
    [FieldOffset(136)] public ulong LastIp;
    [FieldOffset(144)] public ulong LastDp;
    [FieldOffset(152)] public fixed byte Xmm[16 * 16];
    [FieldOffset(408)] public uint Mxcsr;
}
