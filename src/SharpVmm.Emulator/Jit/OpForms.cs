using static SharpVmm.Emulator.Handlers;

namespace SharpVmm.Emulator.Jit;

/// <summary>The interpreter handlers the translator knows, by what they do.</summary>
internal enum OpForm : byte
{
    Unsupported,
    BinRR,
    BinRI,
    UnR,
    MovRR,
    MovRI,
    MovxRR,
    Lea,
    Nop,
    Jcc,
    JmpRel,
    FusedRR,
    FusedRI,
    ShiftImm,
    /// <summary>MOV r, [m] (memory forms go through an inline TLB probe; a miss leaves the op to the interpreter).</summary>
    MovRM,
    MovMR,
    MovMI,
    MovxRM,
    BinRM,
    SetccR,
    CmovRR,
    /// <summary>IMUL r, r (and r, r, imm): CF/OF from the host, SF/ZF/PF from the result, AF 0, as the interpreter sets them.</summary>
    ImulRR,
    ImulRM,
    /// <summary>SHL/SHR/SAR r, CL (or an immediate the fast shift forms do not take): flags made exact right after.</summary>
    ShiftR,
    /// <summary>op [m], r / op [m], imm / op [m] (read-modify-write through the write TLB; CMP/TEST only read).</summary>
    BinMR,
    BinMI,
    UnM,
    PushR,
    PushI,
    PopR,
    /// <summary>Closing transfers that leave the next RIP in the exit slot (64-bit mode only).</summary>
    CallRel,
    Ret,
    JmpR,
    CallR,
    /// <summary>MUL/IMUL/DIV/IDIV r (one operand): only unsigned DIV at 4 or 8 bytes is translated (the commonest early exit in a Linux boot).</summary>
    MulDivR,
    /// <summary>DIV m32/m64: the divisor through the read TLB, then as <see cref="MulDivR"/>.</summary>
    MulDivM,
    /// <summary>SETcc m8 through the write TLB.</summary>
    SetccM,
    /// <summary>CMOVcc r, [m]: the source is read (through the read TLB) whether or not the condition holds, as the interpreter does.</summary>
    CmovRM,
    /// <summary>BT/BTS/BTR/BTC r, imm or r, r: CF from the host, every other flag kept.</summary>
    BitTestR,
    /// <summary>BT/BTS/BTR/BTC m, imm or m, r (a register offset moves the address first); LOCK on an aligned hit.</summary>
    BitTestM,
    Bswap,
    /// <summary>CBW/CWDE/CDQE.</summary>
    Cbw,
    /// <summary>CWD/CDQ/CQO.</summary>
    Cwd,
    /// <summary>[LOCK] CMPXCHG m, r and [LOCK] XADD m, r on a write-TLB hit (aligned when locked).</summary>
    CmpxchgM,
    XaddM,
    /// <summary>CALL/JMP through a pointer in memory (64-bit mode): closing, like their register forms.</summary>
    CallM,
    JmpM,
    /// <summary>LEAVE and PUSHFQ in 64-bit mode.</summary>
    Leave,
    PushF,
}

/// <summary>Integer operations, in the order of the code tables in <see cref="HostCodes"/>.</summary>
internal enum AluOp : byte
{
    Add, Or, Adc, Sbb, And, Sub, Xor, Cmp, Test,
    Not, Neg, Inc, Dec,
}

/// <summary>
/// Recognises an op by its handler: the translator works from the decoded <see cref="Op"/> array the interpreter
/// runs, so both tiers see exactly the same instructions, operands and op indexes.
/// </summary>
internal static unsafe class OpForms
{
    private static readonly Dictionary<nint, (OpForm Form, AluOp Alu)> Table = Build();

    public static (OpForm Form, AluOp Alu) Of(ref Op op)
        => Table.TryGetValue((nint)op.H, out var f) ? f : (OpForm.Unsupported, default);

    private static nint P(delegate*<X86Cpu, ref Op, void> h) => (nint)h;

    private static Dictionary<nint, (OpForm, AluOp)> Build()
    {
        var t = new Dictionary<nint, (OpForm, AluOp)>();
        void Bin<T>(AluOp a) where T : struct, IBinOp
        {
            t[P(&BinRR<T>)] = (OpForm.BinRR, a);
            t[P(&BinRR64<T>)] = (OpForm.BinRR, a);
            t[P(&BinRR32<T>)] = (OpForm.BinRR, a);
            t[P(&BinRI<T>)] = (OpForm.BinRI, a);
            t[P(&BinRI64<T>)] = (OpForm.BinRI, a);
            t[P(&BinRI32<T>)] = (OpForm.BinRI, a);
            t[P(&BinRM<T>)] = (OpForm.BinRM, a);
            t[P(&BinMR<T>)] = (OpForm.BinMR, a);
            t[P(&BinMI<T>)] = (OpForm.BinMI, a);
        }
        void Un<T>(AluOp a) where T : struct, IUnOp
        {
            t[P(&UnR<T>)] = (OpForm.UnR, a);
            t[P(&UnR64<T>)] = (OpForm.UnR, a);
            t[P(&UnR32<T>)] = (OpForm.UnR, a);
            t[P(&UnM<T>)] = (OpForm.UnM, a);
        }
        Bin<OpAdd>(AluOp.Add);
        Bin<OpOr>(AluOp.Or);
        Bin<OpAdc>(AluOp.Adc);
        Bin<OpSbb>(AluOp.Sbb);
        Bin<OpAnd>(AluOp.And);
        Bin<OpSub>(AluOp.Sub);
        Bin<OpXor>(AluOp.Xor);
        Bin<OpCmp>(AluOp.Cmp);
        Bin<OpTest>(AluOp.Test);
        Un<OpNot>(AluOp.Not);
        Un<OpNeg>(AluOp.Neg);
        Un<OpInc>(AluOp.Inc);
        Un<OpDec>(AluOp.Dec);
        t[P(&MovRR)] = (OpForm.MovRR, default);
        t[P(&MovRR64)] = (OpForm.MovRR, default);
        t[P(&MovRR32)] = (OpForm.MovRR, default);
        t[P(&MovRI)] = (OpForm.MovRI, default);
        t[P(&MovRI64)] = (OpForm.MovRI, default);
        t[P(&MovxRR)] = (OpForm.MovxRR, default);
        t[P(&MovRM)] = (OpForm.MovRM, default);
        t[P(&MovRM64)] = (OpForm.MovRM, default);
        t[P(&MovRM32)] = (OpForm.MovRM, default);
        t[P(&MovMR)] = (OpForm.MovMR, default);
        t[P(&MovMR64)] = (OpForm.MovMR, default);
        t[P(&MovMR32)] = (OpForm.MovMR, default);
        t[P(&MovMI)] = (OpForm.MovMI, default);
        t[P(&MovxRM)] = (OpForm.MovxRM, default);
        t[P(&SetccR)] = (OpForm.SetccR, default);
        t[P(&CmovRR)] = (OpForm.CmovRR, default);
        t[P(&Lea)] = (OpForm.Lea, default);
        t[P(&Lea64)] = (OpForm.Lea, default);
        t[P(&Lea32)] = (OpForm.Lea, default);
        t[P(&Nop)] = (OpForm.Nop, default);
        t[P(&ShiftImm64)] = (OpForm.ShiftImm, default);
        t[P(&ShiftImm32)] = (OpForm.ShiftImm, default);
        t[P(&Handlers.Jcc)] = (OpForm.Jcc, default);
        t[P(&JmpRel)] = (OpForm.JmpRel, default);
        t[P(&CmpJccRR64)] = (OpForm.FusedRR, AluOp.Cmp);
        t[P(&CmpJccRR32)] = (OpForm.FusedRR, AluOp.Cmp);
        t[P(&TestJccRR64)] = (OpForm.FusedRR, AluOp.Test);
        t[P(&TestJccRR32)] = (OpForm.FusedRR, AluOp.Test);
        t[P(&CmpJccRI64)] = (OpForm.FusedRI, AluOp.Cmp);
        t[P(&CmpJccRI32)] = (OpForm.FusedRI, AluOp.Cmp);
        t[P(&TestJccRI64)] = (OpForm.FusedRI, AluOp.Test);
        t[P(&TestJccRI32)] = (OpForm.FusedRI, AluOp.Test);
        t[P(&ImulR)] = (OpForm.ImulRR, default);
        t[P(&ImulM)] = (OpForm.ImulRM, default);
        t[P(&Handlers.ShiftR)] = (OpForm.ShiftR, default);
        t[P(&Handlers.PushR)] = (OpForm.PushR, default);
        t[P(&Handlers.PushI)] = (OpForm.PushI, default);
        t[P(&Handlers.PopR)] = (OpForm.PopR, default);
        t[P(&Handlers.CallRel)] = (OpForm.CallRel, default);
        t[P(&Handlers.Ret)] = (OpForm.Ret, default);
        t[P(&Handlers.JmpR)] = (OpForm.JmpR, default);
        t[P(&Handlers.CallR)] = (OpForm.CallR, default);
        t[P(&MulDivR)] = (OpForm.MulDivR, default);
        t[P(&MulDivM)] = (OpForm.MulDivM, default);
        t[P(&SetccM)] = (OpForm.SetccM, default);
        t[P(&CmovRM)] = (OpForm.CmovRM, default);
        t[P(&BitTestR)] = (OpForm.BitTestR, default);
        t[P(&BitTestM)] = (OpForm.BitTestM, default);
        t[P(&Handlers.Bswap)] = (OpForm.Bswap, default);
        t[P(&Handlers.Cbw)] = (OpForm.Cbw, default);
        t[P(&Handlers.Cwd)] = (OpForm.Cwd, default);
        t[P(&CmpxchgM)] = (OpForm.CmpxchgM, default);
        t[P(&XaddM)] = (OpForm.XaddM, default);
        t[P(&Handlers.CallM)] = (OpForm.CallM, default);
        t[P(&Handlers.JmpM)] = (OpForm.JmpM, default);
        t[P(&Handlers.Leave)] = (OpForm.Leave, default);
        t[P(&Pushf)] = (OpForm.PushF, default);
        return t;
    }
}
