using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>SSE operations the translator maps to <see cref="Handlers.SseBin"/>; values are op.Cc.</summary>
internal enum SseKind : byte
{
    // bitwise
    And, AndN, Or, Xor,
    // packed integer
    AddB, AddW, AddD, AddQ, SubB, SubW, SubD, SubQ,
    AddsB, AddsW, AddusB, AddusW, SubsB, SubsW, SubusB, SubusW,
    CmpeqB, CmpeqW, CmpeqD, CmpgtB, CmpgtW, CmpgtD,
    MinUB, MaxUB, MinSW, MaxSW, AvgB, AvgW,
    MulLW, MulHW, MulHUW, MulUDQ, MaddWD, SadBW,
    PackSSWB, PackSSDW, PackUSWB,
    UnpckLBW, UnpckLWD, UnpckLDQ, UnpckLQDQ, UnpckHBW, UnpckHWD, UnpckHDQ, UnpckHQDQ,
    SllW, SllD, SllQ, SrlW, SrlD, SrlQ, SraW, SraD,
    SllDQ, SrlDQ,
    ShufD, ShufLW, ShufHW,
    // float
    AddPS, AddSS, AddPD, AddSD, SubPS, SubSS, SubPD, SubSD, MulPS, MulSS, MulPD, MulSD, DivPS, DivSS, DivPD, DivSD,
    MinPS, MinSS, MinPD, MinSD, MaxPS, MaxSS, MaxPD, MaxSD, SqrtPS, SqrtSS, SqrtPD, SqrtSD,
    CmpPS, CmpSS, CmpPD, CmpSD,
    ShufPS, ShufPD, UnpckLPS, UnpckHPS, UnpckLPD, UnpckHPD,
    CvtDQ2PS, CvtPS2DQ, CvtTPS2DQ, CvtDQ2PD, CvtPD2DQ, CvtTPD2DQ, CvtPS2PD, CvtPD2PS, CvtSS2SD, CvtSD2SS,
    RcpPS, RcpSS, RsqrtPS, RsqrtSS,
    MovHLPS, MovLHPS,
}

/// <summary>
/// SSE/SSE2 on the host's own SSE units, which gives bit-exact results for the same operation. Operations that
/// depend on MXCSR (rounding control, FTZ, DAZ) or raise floating-point exceptions run through native thunks under
/// the guest's MXCSR (<see cref="SseThunks"/>); integer and data-movement operations use .NET intrinsics.
/// </summary>
internal static unsafe partial class Handlers
{
    private static Vector128<byte>* XmmRegs(X86Cpu c) => (Vector128<byte>*)c.Xmm;

    /// <summary>Loads an XMM source operand: register, 16 bytes of memory (aligned when op.Size2 = 1), or a scalar in the low lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> SseSrc(X86Cpu c, ref Op op)
    {
        if ((op.Flags & OpFlags.Mem) == 0) return XmmRegs(c)[op.Rm];
        ulong la = c.Ea(ref op);
        switch (op.Size)
        {
            case 16:
                if (op.Size2 != 0 && (la & 15) != 0) throw c.Gp();
                return Vector128.Create(c.Read64(la), c.Read64((la + 8) & c.LinMask)).AsByte();
            case 8: return Vector128.CreateScalar(c.Read64(la)).AsByte();
            case 4: return Vector128.CreateScalar(c.Read32(la)).AsByte();
            default: return Vector128.CreateScalar((ulong)c.ReadMem(la, op.Size)).AsByte();
        }
    }

    public static void SseBin(X86Cpu c, ref Op op)
    {
        var x = XmmRegs(c);
        Vector128<byte> a = x[op.Reg];
        Vector128<byte> b = op.Cc is (byte)SseKind.SllW or (byte)SseKind.SllD or (byte)SseKind.SllQ or (byte)SseKind.SrlW
            or (byte)SseKind.SrlD or (byte)SseKind.SrlQ or (byte)SseKind.SraW or (byte)SseKind.SraD
            or (byte)SseKind.SllDQ or (byte)SseKind.SrlDQ
            ? ((op.Flags & OpFlags.ImmSrc) != 0 ? Vector128.CreateScalar(op.Imm).AsByte() : SseSrc(c, ref op))
            : SseSrc(c, ref op);
        var k = (SseKind)op.Cc;
        if (SseThunks.HonoursMxcsr(k))
        {
            // The destination changes only if no unmasked exception fires.
            Vector128<byte> r = a;
            RunUnderGuestMxcsr(c, SseThunks.ForKind(k, (byte)op.Imm), &r, &b);
            x[op.Reg] = r;
            return;
        }
        x[op.Reg] = Compute(c, k, a, b, (byte)op.Imm);
    }

    /// <summary>
    /// Runs a thunk from <see cref="SseThunks"/> with the guest's rounding control, FTZ and DAZ but every exception
    /// masked and no flag set, so the host never faults and the flags it reports are the ones this instruction raised.
    /// Those become sticky in the guest MXCSR; an unmasked one raises #XM (or #UD without CR4.OSXMMEXCPT) before
    /// the caller stores any result. Returns the thunk's RAX.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong RunUnderGuestMxcsr(X86Cpu c, nint thunk, Vector128<byte>* a, Vector128<byte>* b)
    {
        uint guest = c.Mxcsr;
        uint m = (guest & SseThunks.HostMxcsrMask & ~MxcsrFlags) | MxcsrMasks;
        ulong r = ((delegate* unmanaged[SuppressGCTransition]<Vector128<byte>*, Vector128<byte>*, uint*, ulong>)thunk)(a, b, &m);
        uint raised = m & MxcsrFlags;
        // Nothing to do unless a raised flag is new or unmasked (bit i of guest & guest >> 7: flag i set and masked).
        if ((raised & ~(guest & (guest >> 7))) != 0) MergeMxcsrFlags(c, guest, raised);
        return r;
    }

    private const uint MxcsrFlags = 0x3F, MxcsrMasks = 0x1F80, MxcsrPreComputation = 0x7; // IE, DE, ZE

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void MergeMxcsrFlags(X86Cpu c, uint guest, uint raised)
    {
        uint unmasked = raised & ~(guest >> 7) & MxcsrFlags;
        if (unmasked != 0 && (unmasked & MxcsrPreComputation) != 0)
            raised &= MxcsrPreComputation; // SDM 11.5.2: an unmasked IE/DE/ZE stops before the result, so no OE/UE/PE
        c.Mxcsr = guest | raised;
        if (unmasked != 0) throw (c.Cr4 & Cr4OsXmmExcpt) != 0 ? c.Fault(XmVector) : c.Ud();
    }

    private const int XmVector = 19;

    private static Vector128<byte> Compute(X86Cpu c, SseKind k, Vector128<byte> a, Vector128<byte> b, byte imm)
    {
        if (!Sse2.IsSupported) throw c.Ud();
        switch (k)
        {
            case SseKind.And: return Sse2.And(a, b);
            case SseKind.AndN: return Sse2.AndNot(a, b);
            case SseKind.Or: return Sse2.Or(a, b);
            case SseKind.Xor: return Sse2.Xor(a, b);
            case SseKind.AddB: return Sse2.Add(a, b);
            case SseKind.AddW: return Sse2.Add(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.AddD: return Sse2.Add(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.AddQ: return Sse2.Add(a.AsInt64(), b.AsInt64()).AsByte();
            case SseKind.SubB: return Sse2.Subtract(a, b);
            case SseKind.SubW: return Sse2.Subtract(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.SubD: return Sse2.Subtract(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.SubQ: return Sse2.Subtract(a.AsInt64(), b.AsInt64()).AsByte();
            case SseKind.AddsB: return Sse2.AddSaturate(a.AsSByte(), b.AsSByte()).AsByte();
            case SseKind.AddsW: return Sse2.AddSaturate(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.AddusB: return Sse2.AddSaturate(a, b);
            case SseKind.AddusW: return Sse2.AddSaturate(a.AsUInt16(), b.AsUInt16()).AsByte();
            case SseKind.SubsB: return Sse2.SubtractSaturate(a.AsSByte(), b.AsSByte()).AsByte();
            case SseKind.SubsW: return Sse2.SubtractSaturate(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.SubusB: return Sse2.SubtractSaturate(a, b);
            case SseKind.SubusW: return Sse2.SubtractSaturate(a.AsUInt16(), b.AsUInt16()).AsByte();
            case SseKind.CmpeqB: return Sse2.CompareEqual(a, b);
            case SseKind.CmpeqW: return Sse2.CompareEqual(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.CmpeqD: return Sse2.CompareEqual(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.CmpgtB: return Sse2.CompareGreaterThan(a.AsSByte(), b.AsSByte()).AsByte();
            case SseKind.CmpgtW: return Sse2.CompareGreaterThan(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.CmpgtD: return Sse2.CompareGreaterThan(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.MinUB: return Sse2.Min(a, b);
            case SseKind.MaxUB: return Sse2.Max(a, b);
            case SseKind.MinSW: return Sse2.Min(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.MaxSW: return Sse2.Max(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.AvgB: return Sse2.Average(a, b);
            case SseKind.AvgW: return Sse2.Average(a.AsUInt16(), b.AsUInt16()).AsByte();
            case SseKind.MulLW: return Sse2.MultiplyLow(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.MulHW: return Sse2.MultiplyHigh(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.MulHUW: return Sse2.MultiplyHigh(a.AsUInt16(), b.AsUInt16()).AsByte();
            case SseKind.MulUDQ: return Sse2.Multiply(a.AsUInt32(), b.AsUInt32()).AsByte();
            case SseKind.MaddWD: return Sse2.MultiplyAddAdjacent(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.SadBW: return Sse2.SumAbsoluteDifferences(a, b).AsByte();
            case SseKind.PackSSWB: return Sse2.PackSignedSaturate(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.PackSSDW: return Sse2.PackSignedSaturate(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.PackUSWB: return Sse2.PackUnsignedSaturate(a.AsInt16(), b.AsInt16());
            case SseKind.UnpckLBW: return Sse2.UnpackLow(a, b);
            case SseKind.UnpckLWD: return Sse2.UnpackLow(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.UnpckLDQ: return Sse2.UnpackLow(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.UnpckLQDQ: return Sse2.UnpackLow(a.AsInt64(), b.AsInt64()).AsByte();
            case SseKind.UnpckHBW: return Sse2.UnpackHigh(a, b);
            case SseKind.UnpckHWD: return Sse2.UnpackHigh(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.UnpckHDQ: return Sse2.UnpackHigh(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.UnpckHQDQ: return Sse2.UnpackHigh(a.AsInt64(), b.AsInt64()).AsByte();
            case SseKind.SllW: return Sse2.ShiftLeftLogical(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.SllD: return Sse2.ShiftLeftLogical(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.SllQ: return Sse2.ShiftLeftLogical(a.AsInt64(), b.AsInt64()).AsByte();
            case SseKind.SrlW: return Sse2.ShiftRightLogical(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.SrlD: return Sse2.ShiftRightLogical(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.SrlQ: return Sse2.ShiftRightLogical(a.AsInt64(), b.AsInt64()).AsByte();
            case SseKind.SraW: return Sse2.ShiftRightArithmetic(a.AsInt16(), b.AsInt16()).AsByte();
            case SseKind.SraD: return Sse2.ShiftRightArithmetic(a.AsInt32(), b.AsInt32()).AsByte();
            case SseKind.SllDQ: return ByteShift(a, (int)b.AsUInt64().ToScalar(), true);
            case SseKind.SrlDQ: return ByteShift(a, (int)b.AsUInt64().ToScalar(), false);
            case SseKind.ShufD: return Shuffle32(b, imm);
            case SseKind.ShufLW: return Vector128.Create(Shuffle16(b.AsUInt64().GetElement(0), imm), b.AsUInt64().GetElement(1)).AsByte();
            case SseKind.ShufHW: return Vector128.Create(b.AsUInt64().GetElement(0), Shuffle16(b.AsUInt64().GetElement(1), imm)).AsByte();
            case SseKind.AddPS: return Sse.Add(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.AddSS: return Sse.AddScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.AddPD: return Sse2.Add(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.AddSD: return Sse2.AddScalar(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.SubPS: return Sse.Subtract(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.SubSS: return Sse.SubtractScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.SubPD: return Sse2.Subtract(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.SubSD: return Sse2.SubtractScalar(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.MulPS: return Sse.Multiply(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.MulSS: return Sse.MultiplyScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.MulPD: return Sse2.Multiply(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.MulSD: return Sse2.MultiplyScalar(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.DivPS: return Sse.Divide(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.DivSS: return Sse.DivideScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.DivPD: return Sse2.Divide(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.DivSD: return Sse2.DivideScalar(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.MinPS: return Sse.Min(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.MinSS: return Sse.MinScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.MinPD: return Sse2.Min(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.MinSD: return Sse2.MinScalar(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.MaxPS: return Sse.Max(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.MaxSS: return Sse.MaxScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.MaxPD: return Sse2.Max(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.MaxSD: return Sse2.MaxScalar(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.SqrtPS: return Sse.Sqrt(b.AsSingle()).AsByte();
            case SseKind.SqrtSS: return Sse.SqrtScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.SqrtPD: return Sse2.Sqrt(b.AsDouble()).AsByte();
            case SseKind.SqrtSD: return Sse2.SqrtScalar(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.RcpPS: return Sse.Reciprocal(b.AsSingle()).AsByte();
            case SseKind.RcpSS: return Sse.ReciprocalScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.RsqrtPS: return Sse.ReciprocalSqrt(b.AsSingle()).AsByte();
            case SseKind.RsqrtSS: return Sse.ReciprocalSqrtScalar(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.CmpPS: return ComparePs(a.AsSingle(), b.AsSingle(), imm).AsByte();
            case SseKind.CmpSS: return Sse.MoveScalar(a.AsSingle(), ComparePs(a.AsSingle(), b.AsSingle(), imm)).AsByte();
            case SseKind.CmpPD: return ComparePd(a.AsDouble(), b.AsDouble(), imm).AsByte();
            case SseKind.CmpSD: return Sse2.MoveScalar(a.AsDouble(), ComparePd(a.AsDouble(), b.AsDouble(), imm)).AsByte();
            case SseKind.ShufPS:
            {
                var fa = a.AsUInt32(); var fb = b.AsUInt32();
                return Vector128.Create(fa.GetElement(imm & 3), fa.GetElement((imm >> 2) & 3), fb.GetElement((imm >> 4) & 3), fb.GetElement(imm >> 6)).AsByte();
            }
            case SseKind.ShufPD:
                return Vector128.Create(a.AsUInt64().GetElement(imm & 1), b.AsUInt64().GetElement((imm >> 1) & 1)).AsByte();
            case SseKind.UnpckLPS: return Sse.UnpackLow(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.UnpckHPS: return Sse.UnpackHigh(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.UnpckLPD: return Sse2.UnpackLow(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.UnpckHPD: return Sse2.UnpackHigh(a.AsDouble(), b.AsDouble()).AsByte();
            case SseKind.CvtDQ2PS: return Sse2.ConvertToVector128Single(b.AsInt32()).AsByte();
            case SseKind.CvtPS2DQ: return Sse2.ConvertToVector128Int32(b.AsSingle()).AsByte();
            case SseKind.CvtTPS2DQ: return Sse2.ConvertToVector128Int32WithTruncation(b.AsSingle()).AsByte();
            case SseKind.CvtDQ2PD: return Sse2.ConvertToVector128Double(b.AsInt32()).AsByte();
            case SseKind.CvtPD2DQ: return Sse2.ConvertToVector128Int32(b.AsDouble()).AsByte();
            case SseKind.CvtTPD2DQ: return Sse2.ConvertToVector128Int32WithTruncation(b.AsDouble()).AsByte();
            case SseKind.CvtPS2PD: return Sse2.ConvertToVector128Double(b.AsSingle()).AsByte();
            case SseKind.CvtPD2PS: return Sse2.ConvertToVector128Single(b.AsDouble()).AsByte();
            case SseKind.CvtSS2SD: return Sse2.ConvertScalarToVector128Double(a.AsDouble(), b.AsSingle()).AsByte();
            case SseKind.CvtSD2SS: return Sse2.ConvertScalarToVector128Single(a.AsSingle(), b.AsDouble()).AsByte();
            case SseKind.MovHLPS: return Sse.MoveHighToLow(a.AsSingle(), b.AsSingle()).AsByte();
            case SseKind.MovLHPS: return Sse.MoveLowToHigh(a.AsSingle(), b.AsSingle()).AsByte();
        }
        throw c.Ud();
    }

    private static Vector128<byte> ByteShift(Vector128<byte> a, int n, bool left)
    {
        if (n > 15) return Vector128<byte>.Zero;
        Span<byte> src = stackalloc byte[16], dst = stackalloc byte[16];
        a.CopyTo(src);
        dst.Clear();
        if (left) src[..(16 - n)].CopyTo(dst[n..]);
        else src[n..].CopyTo(dst);
        return Vector128.Create((ReadOnlySpan<byte>)dst);
    }

    private static Vector128<byte> Shuffle32(Vector128<byte> b, byte imm)
    {
        var v = b.AsUInt32();
        return Vector128.Create(v.GetElement(imm & 3), v.GetElement((imm >> 2) & 3), v.GetElement((imm >> 4) & 3), v.GetElement(imm >> 6)).AsByte();
    }

    private static ulong Shuffle16(ulong q, byte imm)
    {
        ulong r = 0;
        for (int i = 0; i < 4; i++) r |= ((q >> (16 * ((imm >> (2 * i)) & 3))) & 0xFFFF) << (16 * i);
        return r;
    }

    private static Vector128<float> ComparePs(Vector128<float> a, Vector128<float> b, byte imm) => (imm & 7) switch
    {
        0 => Sse.CompareEqual(a, b),
        1 => Sse.CompareLessThan(a, b),
        2 => Sse.CompareLessThanOrEqual(a, b),
        3 => Sse.CompareUnordered(a, b),
        4 => Sse.CompareNotEqual(a, b),
        5 => Sse.CompareNotLessThan(a, b),
        6 => Sse.CompareNotLessThanOrEqual(a, b),
        _ => Sse.CompareOrdered(a, b),
    };

    private static Vector128<double> ComparePd(Vector128<double> a, Vector128<double> b, byte imm) => (imm & 7) switch
    {
        0 => Sse2.CompareEqual(a, b),
        1 => Sse2.CompareLessThan(a, b),
        2 => Sse2.CompareLessThanOrEqual(a, b),
        3 => Sse2.CompareUnordered(a, b),
        4 => Sse2.CompareNotEqual(a, b),
        5 => Sse2.CompareNotLessThan(a, b),
        6 => Sse2.CompareNotLessThanOrEqual(a, b),
        _ => Sse2.CompareOrdered(a, b),
    };

    // ---------------------------------------------------------------- moves

    /// <summary>Full 128-bit move to XMM (MOVAPS/MOVUPS/MOVDQA/MOVDQU...); op.Size2 = 1 for the aligned forms.</summary>
    public static void MovXmmLoad(X86Cpu c, ref Op op) => XmmRegs(c)[op.Reg] = SseSrc(c, ref op);

    public static void MovXmmStore(X86Cpu c, ref Op op)
    {
        ulong la = c.Ea(ref op);
        if (op.Size2 != 0 && (la & 15) != 0) throw c.Gp();
        var v = XmmRegs(c)[op.Reg].AsUInt64();
        c.Translate((la + 15) & c.LinMask, X86Cpu.AccWrite, c.UserBit != 0);
        c.Write64(la, v.GetElement(0));
        c.Write64((la + 8) & c.LinMask, v.GetElement(1));
    }

    /// <summary>Scalar/partial loads: op.Cc 0 = zero-extend the 4/8-byte value into the register (MOVD/MOVQ/MOVSS/MOVSD from memory),
    /// 1 = merge into the low lane (MOVSS/MOVSD/MOVLPS reg or memory), 2 = merge into the high qword (MOVHPS/MOVHPD).</summary>
    public static void MovXmmPartial(X86Cpu c, ref Op op)
    {
        var x = XmmRegs(c);
        int s = op.Size;
        ulong v;
        if ((op.Flags & OpFlags.Mem) != 0) v = c.ReadMem(c.Ea(ref op), s);
        else if (op.Cc == 0 && op.Size2 == 1) v = c.GetReg(op.Rm, s);            // MOVD/MOVQ from a GPR
        else v = x[op.Rm].AsUInt64().GetElement(0) & X86Cpu.SizeMask(s);
        var cur = x[op.Reg].AsUInt64();
        ulong m = X86Cpu.SizeMask(s);
        x[op.Reg] = op.Cc switch
        {
            0 => Vector128.Create(v, 0UL).AsByte(),
            1 => Vector128.Create((cur.GetElement(0) & ~m) | v, cur.GetElement(1)).AsByte(),
            _ => Vector128.Create(cur.GetElement(0), v).AsByte(),
        };
    }

    /// <summary>Stores the low 4/8 bytes (op.Cc 0) or the high qword (op.Cc 2) of XMM to memory, or the low part to a GPR (op.Size2 = 1).</summary>
    public static void MovXmmPartialStore(X86Cpu c, ref Op op)
    {
        var v = XmmRegs(c)[op.Reg].AsUInt64();
        ulong val = op.Cc == 2 ? v.GetElement(1) : v.GetElement(0) & X86Cpu.SizeMask(op.Size);
        if (op.Size2 == 1) c.SetReg(op.Rm, op.Size, val);
        else c.WriteMem(c.Ea(ref op), op.Size, val);
    }

    /// <summary>PMOVMSKB (op.Cc 0), MOVMSKPS (1), MOVMSKPD (2) into a GPR.</summary>
    public static void MoveMask(X86Cpu c, ref Op op)
    {
        var v = XmmRegs(c)[op.Rm];
        uint m = op.Cc switch
        {
            0 => (uint)Sse2.MoveMask(v),
            1 => (uint)Sse.MoveMask(v.AsSingle()),
            _ => (uint)Sse2.MoveMask(v.AsDouble()),
        };
        c.SetReg(op.Reg, op.Size, m);
    }

    public static void Pextrw(X86Cpu c, ref Op op)
        => c.SetReg(op.Reg, op.Size, XmmRegs(c)[op.Rm].AsUInt16().GetElement((int)(op.Imm & 7)));

    public static void Pinsrw(X86Cpu c, ref Op op)
    {
        ushort v = (op.Flags & OpFlags.Mem) != 0 ? c.Read16(c.Ea(ref op)) : (ushort)c.GetReg(op.Rm, 4);
        var x = XmmRegs(c);
        x[op.Reg] = x[op.Reg].AsUInt16().WithElement((int)(op.Imm & 7), v).AsByte();
    }

    /// <summary>COMISS/UCOMISS (op.Size 4) and COMISD/UCOMISD (8), op.Cc = 1 for the COMIS forms that signal on QNaN:
    /// ZF PF CF from the compare, OF SF AF cleared.</summary>
    public static void Comis(X86Cpu c, ref Op op)
    {
        var a = XmmRegs(c)[op.Reg];
        var b = SseSrc(c, ref op);
        ulong fl = RunUnderGuestMxcsr(c, SseThunks.ForComi(op.Size == 8, op.Cc == 1), &a, &b);
        c.SetEager(fl & (X86Cpu.ZF | X86Cpu.PF | X86Cpu.CF));
    }

    /// <summary>CVTSI2SS/SD: op.Size = integer size, op.Size2 = 4 (single) or 8 (double).</summary>
    public static void CvtIntToFp(X86Cpu c, ref Op op)
    {
        ulong v = (op.Flags & OpFlags.Mem) != 0 ? c.ReadMem(c.Ea(ref op), op.Size) : c.GetReg(op.Rm, op.Size);
        var x = XmmRegs(c);
        Vector128<byte> r = x[op.Reg];
        var b = Vector128.CreateScalar(v).AsByte();
        RunUnderGuestMxcsr(c, SseThunks.ForIntToFp(op.Size2 == 8, op.Size == 8), &r, &b);
        x[op.Reg] = r;
    }

    /// <summary>CVT(T)SS2SI/CVT(T)SD2SI: op.Size = integer size, op.Size2 = 4/8 source float size, op.Cc = 1 to truncate.</summary>
    public static void CvtFpToInt(X86Cpu c, ref Op op)
    {
        Vector128<byte> src = (op.Flags & OpFlags.Mem) != 0
            ? Vector128.CreateScalar(c.ReadMem(c.Ea(ref op), op.Size2)).AsByte()
            : XmmRegs(c)[op.Rm];
        Vector128<byte> unused = default;
        ulong r = RunUnderGuestMxcsr(c, SseThunks.ForFpToInt(op.Size2 == 8, op.Cc == 1, op.Size == 8), &unused, &src);
        c.SetReg(op.Reg, op.Size, r);
    }

    public static void Emms(X86Cpu c, ref Op op) => c.Ftw = 0;

}
