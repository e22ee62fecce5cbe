using System.Runtime.Intrinsics;

namespace SharpVmm.Emulator;

/// <summary>
/// MMX: the SSE lane operations applied to 64-bit registers. MMn aliases the mantissa of x87 physical register n,
/// as on hardware; an MMX write also sets TOP = 0 and tags every register valid (EMMS empties them again).
/// </summary>
internal static unsafe partial class Handlers
{
    private static ulong MmxSrc(X86Cpu c, ref Op op)
        => (op.Flags & OpFlags.Mem) != 0 ? c.Read64(c.Ea(ref op)) : c.ReadMmx(op.Rm);

    public static void MmxBin(X86Cpu c, ref Op op)
    {
        var k = (SseKind)op.Cc;
        ulong a = c.ReadMmx(op.Reg);
        ulong b = (op.Flags & OpFlags.ImmSrc) != 0 ? op.Imm : MmxSrc(c, ref op);
        ulong r;
        switch (k)
        {
            case SseKind.PackSSWB:
            case SseKind.PackSSDW:
            case SseKind.PackUSWB:
                // Pack [a, b] as one 128-bit source so both halves land in the low 64 bits.
                r = Compute(c, k, Vector128.Create(a, b).AsByte(), Vector128<byte>.Zero, 0).AsUInt64().GetElement(0);
                break;
            case SseKind.UnpckHBW:
            case SseKind.UnpckHWD:
            case SseKind.UnpckHDQ:
                r = Compute(c, k - (SseKind.UnpckHBW - SseKind.UnpckLBW), Vector128.CreateScalar(a >> 32).AsByte(), Vector128.CreateScalar(b >> 32).AsByte(), 0).AsUInt64().GetElement(0);
                break;
            case SseKind.ShufLW:
                r = Shuffle16(b, (byte)op.Imm);
                break;
            default:
                r = Compute(c, k, Vector128.CreateScalar(a).AsByte(), Vector128.CreateScalar(b).AsByte(), (byte)op.Imm).AsUInt64().GetElement(0);
                break;
        }
        c.WriteMmx(op.Reg, r);
    }

    /// <summary>MOVD/MOVQ into MMX: from a GPR (op.Size2 = 1), memory, or another MMX register; 4-byte sources zero-extend.</summary>
    public static void MmxLoad(X86Cpu c, ref Op op)
    {
        ulong v = op.Size2 == 1 ? c.GetReg(op.Rm, op.Size) : (op.Flags & OpFlags.Mem) != 0 ? c.ReadMem(c.Ea(ref op), op.Size) : c.ReadMmx(op.Rm);
        c.WriteMmx(op.Reg, v & X86Cpu.SizeMask(op.Size));
    }

    /// <summary>MOVD/MOVQ from MMX to a GPR (op.Size2 = 1) or memory; op.Reg is the MMX register.</summary>
    public static void MmxStore(X86Cpu c, ref Op op)
    {
        ulong v = c.ReadMmx(op.Reg) & X86Cpu.SizeMask(op.Size);
        if (op.Size2 == 1) c.SetReg(op.Rm, op.Size, v);
        else c.WriteMem(c.Ea(ref op), op.Size, v);
        c.EnterMmxMode();
    }

    public static void MmxMoveMask(X86Cpu c, ref Op op)
    {
        ulong v = c.ReadMmx(op.Rm);
        uint m = 0;
        for (int i = 0; i < 8; i++) m |= (uint)((v >> (i * 8 + 7)) & 1) << i;
        c.SetReg(op.Reg, op.Size, m);
        c.EnterMmxMode();
    }

    public static void MmxPextrw(X86Cpu c, ref Op op)
    {
        c.SetReg(op.Reg, op.Size, (c.ReadMmx(op.Rm) >> (int)((op.Imm & 3) * 16)) & 0xFFFF);
        c.EnterMmxMode();
    }

    public static void MmxPinsrw(X86Cpu c, ref Op op)
    {
        ulong w = (op.Flags & OpFlags.Mem) != 0 ? c.Read16(c.Ea(ref op)) : (ushort)c.GetReg(op.Rm, 4);
        int sh = (int)((op.Imm & 3) * 16);
        c.WriteMmx(op.Reg, (c.ReadMmx(op.Reg) & ~(0xFFFFUL << sh)) | (w << sh));
    }

    /// <summary>MOVQ2DQ (op.Cc 0: xmm ← mm) and MOVDQ2Q (1: mm ← low qword of xmm).</summary>
    public static void MmxXmmMove(X86Cpu c, ref Op op)
    {
        if (op.Cc == 0) XmmRegs(c)[op.Reg] = Vector128.CreateScalar(c.ReadMmx(op.Rm)).AsByte();
        else c.WriteMmx(op.Reg, XmmRegs(c)[op.Rm].AsUInt64().GetElement(0));
    }
}
