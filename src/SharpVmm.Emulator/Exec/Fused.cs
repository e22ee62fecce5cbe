using System.Runtime.CompilerServices;

namespace SharpVmm.Emulator;

/// <summary>
/// CMP or TEST of two registers, or of a register and an immediate, directly followed by a Jcc: one op instead of
/// two (compiled code ends most blocks this way). The flags are left lazily exactly as the CMP/TEST alone would
/// leave them, and the branch decision is taken from the operands themselves rather than reconstructed from the
/// lazy state. Layout: Reg/Rm/Disp (sign-extended immediate) and Size2 (4 or 8) describe the compare; Imm, NextOff,
/// Size and Cc are the Jcc's; Off is the compare's offset and Imm2 the Jcc's, where a single-step stops in between.
/// </summary>
internal static unsafe partial class Handlers
{
    public static void CmpJccRR64(X86Cpu c, ref Op op)
    {
        ulong a = c.R[op.Reg], b = c.R[op.Rm], r = a - b;
        c.SetLazy(X86Cpu.FkSub, a, b, r, 8);
        Branch(c, ref op, SubCond64(c, op.Cc, a, b, r));
    }

    public static void CmpJccRI64(X86Cpu c, ref Op op)
    {
        ulong a = c.R[op.Reg], b = (ulong)(long)op.Disp, r = a - b;
        c.SetLazy(X86Cpu.FkSub, a, b, r, 8);
        Branch(c, ref op, SubCond64(c, op.Cc, a, b, r));
    }

    public static void CmpJccRR32(X86Cpu c, ref Op op)
    {
        // The lazy operands as CMP r32, r32 leaves them: zero-extended, the difference in 64-bit arithmetic.
        ulong a = (uint)c.R[op.Reg], b = (uint)c.R[op.Rm], r = a - b;
        c.SetLazy(X86Cpu.FkSub, a, b, r, 4);
        Branch(c, ref op, SubCond32(c, op.Cc, (uint)a, (uint)b, (uint)r));
    }

    public static void CmpJccRI32(X86Cpu c, ref Op op)
    {
        ulong a = (uint)c.R[op.Reg], b = (uint)op.Disp, r = a - b;
        c.SetLazy(X86Cpu.FkSub, a, b, r, 4);
        Branch(c, ref op, SubCond32(c, op.Cc, (uint)a, (uint)b, (uint)r));
    }

    public static void TestJccRR64(X86Cpu c, ref Op op)
    {
        ulong r = c.R[op.Reg] & c.R[op.Rm];
        c.SetLogic(r, 8);
        Branch(c, ref op, LogicCond(c, op.Cc, r == 0, (long)r < 0));
    }

    public static void TestJccRI64(X86Cpu c, ref Op op)
    {
        ulong r = c.R[op.Reg] & (ulong)(long)op.Disp;
        c.SetLogic(r, 8);
        Branch(c, ref op, LogicCond(c, op.Cc, r == 0, (long)r < 0));
    }

    public static void TestJccRR32(X86Cpu c, ref Op op)
    {
        uint r = (uint)c.R[op.Reg] & (uint)c.R[op.Rm];
        c.SetLogic(r, 4);
        Branch(c, ref op, LogicCond(c, op.Cc, r == 0, (int)r < 0));
    }

    public static void TestJccRI32(X86Cpu c, ref Op op)
    {
        uint r = (uint)c.R[op.Reg] & (uint)op.Disp;
        c.SetLogic(r, 4);
        Branch(c, ref op, LogicCond(c, op.Cc, r == 0, (int)r < 0));
    }

    /// <summary>The compare half alone (for single-stepping, which must stop before the Jcc).</summary>
    public static void FusedCompareOnly(X86Cpu c, ref Op op)
    {
        ulong mask = op.Size2 == 8 ? ulong.MaxValue : uint.MaxValue;
        ulong a = c.R[op.Reg] & mask, b = (FuseKind.IsImm(op.Fuse) ? (ulong)(long)op.Disp : c.R[op.Rm]) & mask;
        if (FuseKind.IsTest(op.Fuse)) c.SetLogic(a & b, op.Size2);
        else c.SetLazy(X86Cpu.FkSub, a, b, a - b, op.Size2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Branch(X86Cpu c, ref Op op, bool taken)
        => c.Rip = (c.R[X86Cpu.BlockRipReg] + (taken ? op.Imm : op.NextOff)) & X86Cpu.SizeMask(op.Size);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SubCond64(X86Cpu c, int cc, ulong a, ulong b, ulong r) => cc switch
    {
        2 => a < b,
        3 => a >= b,
        4 => a == b,
        5 => a != b,
        6 => a <= b,
        7 => a > b,
        8 => (long)r < 0,
        9 => (long)r >= 0,
        12 => (long)a < (long)b,
        13 => (long)a >= (long)b,
        14 => (long)a <= (long)b,
        15 => (long)a > (long)b,
        _ => c.Cond(cc), // O, NO, P, NP: from the lazy state just set
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SubCond32(X86Cpu c, int cc, uint a, uint b, uint r) => cc switch
    {
        2 => a < b,
        3 => a >= b,
        4 => a == b,
        5 => a != b,
        6 => a <= b,
        7 => a > b,
        8 => (int)r < 0,
        9 => (int)r >= 0,
        12 => (int)a < (int)b,
        13 => (int)a >= (int)b,
        14 => (int)a <= (int)b,
        15 => (int)a > (int)b,
        _ => c.Cond(cc),
    };

    /// <summary>After TEST (CF = OF = 0): B, O never; AE, NO always; the signed conditions reduce to SF and ZF.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool LogicCond(X86Cpu c, int cc, bool zero, bool sign) => cc switch
    {
        0 or 2 => false,
        1 or 3 => true,
        4 or 6 => zero,
        5 or 7 => !zero,
        8 or 12 => sign,
        9 or 13 => !sign,
        14 => zero || sign,
        15 => !zero && !sign,
        _ => c.Cond(cc), // P, NP
    };
}
