namespace SharpVmm.Emulator;

/// <summary>Near control transfers. op.Size is the operand size (which also truncates the new RIP); op.Imm a block-relative target.</summary>
internal static unsafe partial class Handlers
{
    public static void JmpRel(X86Cpu c, ref Op op) => c.Rip = (c.R[X86Cpu.BlockRipReg] + op.Imm) & X86Cpu.SizeMask(op.Size);

    public static void Jcc(X86Cpu c, ref Op op)
        => c.Rip = (c.R[X86Cpu.BlockRipReg] + (c.Cond(op.Cc) ? op.Imm : op.NextOff)) & X86Cpu.SizeMask(op.Size);

    public static void CallRel(X86Cpu c, ref Op op)
    {
        ulong m = X86Cpu.SizeMask(op.Size);
        c.Push(op.Size, (c.R[X86Cpu.BlockRipReg] + op.NextOff) & m);
        c.Rip = (c.R[X86Cpu.BlockRipReg] + op.Imm) & m;
    }

    public static void Ret(X86Cpu c, ref Op op)
    {
        ulong rsp = c.R[4];
        ulong target = c.Pop(op.Size);
        if (!X86Cpu.IsCanonical(target)) { c.R[4] = rsp; throw c.Gp(); } // precise: RSP as before the RET
        if (op.Imm != 0) c.R[4] = (c.R[4] & ~c.StackMask) | ((c.R[4] + op.Imm) & c.StackMask);
        c.Rip = target & X86Cpu.SizeMask(op.Size);
    }

    // Indirect targets are checked here so a non-canonical one faults on the branch (as hardware does), not on the
    // fetch at the target. 16/32-bit targets are always canonical.
    public static void JmpR(X86Cpu c, ref Op op) => c.Rip = CheckTarget(c, c.GetReg(op.Reg, op.Size));
    public static void JmpM(X86Cpu c, ref Op op) => c.Rip = CheckTarget(c, c.ReadMem(c.Ea(ref op), op.Size));

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong CheckTarget(X86Cpu c, ulong target) => X86Cpu.IsCanonical(target) ? target : throw c.Gp();

    public static void CallR(X86Cpu c, ref Op op)
    {
        ulong target = CheckTarget(c, c.GetReg(op.Reg, op.Size));
        c.Push(op.Size, (c.R[X86Cpu.BlockRipReg] + op.NextOff) & X86Cpu.SizeMask(op.Size));
        c.Rip = target;
    }

    public static void CallM(X86Cpu c, ref Op op)
    {
        ulong target = CheckTarget(c, c.ReadMem(c.Ea(ref op), op.Size));
        c.Push(op.Size, (c.R[X86Cpu.BlockRipReg] + op.NextOff) & X86Cpu.SizeMask(op.Size));
        c.Rip = target;
    }

    /// <summary>LOOP (op.Cc 0), LOOPE (1), LOOPNE (2), JCXZ/JECXZ/JRCXZ (3); op.Size2 = counter (address) size.</summary>
    public static void Loop(X86Cpu c, ref Op op)
    {
        int asz = op.Size2;
        ulong cnt = c.GetReg(1, asz);
        bool taken;
        if (op.Cc == 3) taken = cnt == 0;
        else
        {
            cnt = (cnt - 1) & X86Cpu.SizeMask(asz);
            c.SetReg(1, asz, cnt);
            taken = cnt != 0 && (op.Cc == 0 || (op.Cc == 1) == c.Cond(4));
        }
        c.Rip = (c.R[X86Cpu.BlockRipReg] + (taken ? op.Imm : op.NextOff)) & X86Cpu.SizeMask(op.Size);
    }
}
