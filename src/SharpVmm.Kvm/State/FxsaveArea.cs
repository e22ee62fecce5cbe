using SharpVmm.Core.Cpu;
using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm.State;

/// <summary>
/// x87/SSE state inside an XSAVE image: the 512-byte legacy (FXSAVE) region at the start and the XSTATE_BV word of
/// the header at 512 (Intel SDM vol. 1, 13.4). Used instead of KVM_SET_FPU when KVM has KVM_CAP_XSAVE, because
/// KVM_SET_FPU does not load MXCSR and would leave AVX state behind.
/// </summary>
public static unsafe class FxsaveArea
{
    private const int Fcw = 0, Fsw = 2, Ftw = 4, Fop = 6, Fip = 8, Fdp = 16, Mxcsr = 24, St = 32, Xmm = 160, XstateBv = 512;
    private const ulong X87AndSse = 0b11;

    public static FpuState Read(in KvmXsave xsave)
    {
        fixed (byte* p = xsave.Region)
        {
            var f = new FpuState
            {
                Fcw = *(ushort*)(p + Fcw), Fsw = *(ushort*)(p + Fsw), Ftw = p[Ftw], LastOpcode = *(ushort*)(p + Fop),
                LastIp = *(ulong*)(p + Fip), LastDp = *(ulong*)(p + Fdp), Mxcsr = *(uint*)(p + Mxcsr),
            };
            new ReadOnlySpan<byte>(p + St, 8 * 16).CopyTo(f.St);
            new ReadOnlySpan<byte>(p + Xmm, 16 * 16).CopyTo(f.Xmm);
            return f;
        }
    }

    /// <summary>Writes <paramref name="f"/> into the legacy region and marks x87 and SSE present so XRSTOR loads them.</summary>
    public static void Write(FpuState f, ref KvmXsave xsave)
    {
        if (f.St.Length != 8 * 16 || f.Xmm.Length != 16 * 16)
            throw new KvmException(KvmErrorKind.InvalidArgument, $"FPU state must hold 128 bytes of ST and 256 of XMM registers, got {f.St.Length} and {f.Xmm.Length}");
        fixed (byte* p = xsave.Region)
        {
            *(ushort*)(p + Fcw) = f.Fcw;
            *(ushort*)(p + Fsw) = f.Fsw;
            p[Ftw] = f.Ftw;
            *(ushort*)(p + Fop) = f.LastOpcode;
            *(ulong*)(p + Fip) = f.LastIp;
            *(ulong*)(p + Fdp) = f.LastDp;
            *(uint*)(p + Mxcsr) = f.Mxcsr;
            f.St.CopyTo(new Span<byte>(p + St, 8 * 16));
            f.Xmm.CopyTo(new Span<byte>(p + Xmm, 16 * 16));
            *(ulong*)(p + XstateBv) |= X87AndSse;
        }
    }
}
