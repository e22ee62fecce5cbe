using Iced.Intel;
using static Iced.Intel.Mnemonic;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>The classes under test, one xunit test each (see DifferentialTests).</summary>
internal static class InstructionClasses
{
    public static InstructionClass Create(string name) => name switch
    {
        "Alu" => new CodeSetClass(name, [Add, Adc, Sub, Sbb, And, Or, Xor, Cmp, Test]),
        "IncDecNegNot" => new CodeSetClass(name, [Inc, Dec, Neg, Not]),
        "Shift" => new ShiftClass(name, [Shl, Sal, Shr, Sar, Rol, Ror, Rcl, Rcr]),
        "DoubleShift" => new ShiftClass(name, [Shld, Shrd]),
        "Multiply" => new CodeSetClass(name, [Mul, Imul]),
        "Divide" => new DivideClass(name),
        "DivideError" => new DivideErrorClass(name),
        "BitTest" => new BitTestClass(name),
        "BitScan" => new CodeSetClass(name, [Bsf, Bsr]),
        "Tzcnt" => new CodeSetClass(name, [Tzcnt], CpuFeature.Bmi1),
        "Bmi1" => new CodeSetClass(name, [Andn, Bextr, Blsi, Blsmsk, Blsr], CpuFeature.Bmi1, vex: true),
        "RepBsf" => new RepBsfClass(name),
        "Lzcnt" => new CodeSetClass(name, [Lzcnt], CpuFeature.Lzcnt),
        "Popcnt" => new CodeSetClass(name, [Popcnt], CpuFeature.Popcnt),
        "ByteSwap" => new CodeSetClass(name, [Bswap], filter: c => c != Code.Bswap_r16), // BSWAP r16 is undefined
        "Movbe" => new CodeSetClass(name, [Movbe], CpuFeature.Movbe),
        "Exchange" => new CodeSetClass(name, [Cmpxchg, Xadd, Xchg, Cmpxchg8b, Cmpxchg16b]),
        "Conditional" => new ConditionalClass(name),
        "Extend" => new CodeSetClass(name, [Movzx, Movsx, Movsxd, Cbw, Cwde, Cdqe, Cwd, Cdq, Cqo],
            filter: c => c is not (Code.Movsxd_r16_rm16 or Code.Movsxd_r32_rm32)), // vendor-specific forms
        "MovLea" => new MovLeaClass(name),
        "String" => new StringClass(),
        "Branch" => new BranchClass(name),
        "Stack" => new StackClass(name),
        "FlagOps" => new FlagOpsClass(name),
        "SseInteger" => new CodeSetClass(name,
        [
            Paddb, Paddw, Paddd, Paddq, Paddsb, Paddsw, Paddusb, Paddusw, Psubb, Psubw, Psubd, Psubq, Psubsb, Psubsw,
            Psubusb, Psubusw, Pand, Pandn, Por, Pxor, Pcmpeqb, Pcmpeqw, Pcmpeqd, Pcmpgtb, Pcmpgtw, Pcmpgtd, Pmovmskb,
            Pshufd, Pshuflw, Pshufhw, Punpcklbw, Punpcklwd, Punpckldq, Punpcklqdq, Punpckhbw, Punpckhwd, Punpckhdq,
            Punpckhqdq, Packsswb, Packssdw, Packuswb, Psllw, Pslld, Psllq, Psrlw, Psrld, Psrlq, Psraw, Psrad, Pslldq,
            Psrldq, Pmullw, Pmulhw, Pmulhuw, Pmuludq, Pmaddwd, Psadbw, Pavgb, Pavgw, Pminub, Pmaxub, Pminsw, Pmaxsw,
            Pextrw, Pinsrw, Movd, Movq, Movdqa, Movdqu, Movaps, Movups, Movapd, Movupd, Movlps, Movhps, Movlpd, Movhpd,
            Movhlps, Movlhps, Shufps, Shufpd, Unpcklps, Unpckhps, Unpcklpd, Unpckhpd, Andps, Andnps, Orps, Xorps, Andpd,
            Andnpd, Orpd, Xorpd, Movmskps, Movmskpd, Movntdq, Movnti, Movntps, Movntpd,
        ], CpuFeature.Sse | CpuFeature.Sse2),
        "SseFloat" => new SseFloatClass(name, rounding: false, exceptionFlags: false),
        "SseFloatRounding" => new SseFloatClass(name, rounding: true, exceptionFlags: false),
        "SseFloatMxcsr" => new SseFloatClass(name, rounding: true, exceptionFlags: true),
        "Sse3" => new SseFloatClass(name, [Addsubps, Addsubpd, Haddps, Haddpd, Hsubps, Hsubpd, Movddup, Movshdup, Movsldup, Lddqu], CpuFeature.Sse3),
        _ => throw new ArgumentException($"no differential class named {name}", nameof(name)),
    };

    public static readonly string[] Names =
    [
        "Alu", "IncDecNegNot", "Shift", "DoubleShift", "Multiply", "Divide", "DivideError", "BitTest", "BitScan", "Tzcnt", "Bmi1", "RepBsf", "Lzcnt",
        "Popcnt", "ByteSwap", "Movbe", "Exchange", "Conditional", "Extend", "MovLea", "String", "Branch", "Stack", "FlagOps",
        "SseInteger", "SseFloat", "SseFloatRounding", "SseFloatMxcsr", "Sse3",
    ];
}

/// <summary>Shifts and rotates: CL often holds a count near 0, 1, the widths or the masks.</summary>
internal sealed class ShiftClass(string name, Mnemonic[] mnemonics) : CodeSetClass(name, mnemonics)
{
    public override void Init(CaseContext ctx)
    {
        base.Init(ctx);
        if (ctx.Rng.Chance(70)) ctx.State.Gprs[1] = (ctx.State.Gprs[1] & ~0xFFUL) | EdgeValues.Count(ctx.Rng);
    }

    protected override void Prepare(CaseContext ctx, ref Instruction ins, List<Instruction> emit)
    {
        // Refresh CL now and then so later steps see edge counts too.
        if (ins.GetOpKind(ins.OpCount - 1) == OpKind.Register && ctx.Rng.Chance(25))
            emit.Add(Instruction.Create(Code.Mov_r8_imm8, Register.CL, EdgeValues.Count(ctx.Rng)));
    }
}

/// <summary>DIV/IDIV: setup instructions choose a divisor, quotient and remainder that cannot raise #DE.</summary>
internal sealed class DivideClass(string name) : CodeSetClass(name, [Div, Idiv])
{
    protected override void Prepare(CaseContext ctx, ref Instruction ins, List<Instruction> emit)
    {
        var r = ctx.Rng;
        if (r.Chance(15)) return; // as generated: the builder rejects it if it would fault
        bool signed = ins.Mnemonic == Idiv;
        int size = ins.Op0Kind == OpKind.Register ? ins.Op0Register.GetSize() : ins.MemorySize.GetSize();
        int bits = size * 8;
        ulong mask = EdgeValues.Mask(bits);
        ulong d;
        if (ins.Op0Kind == OpKind.Register)
        {
            var reg = ins.Op0Register;
            var full = reg.GetFullRegister();
            if (full is Register.RAX or Register.RDX || reg is >= Register.AH and <= Register.BH) return;
            do d = EdgeValues.Of(r, bits); while (d == 0);
            emit.Add(MovImm(reg, (r.NextU64() & ~mask) | d));
        }
        else
        {
            do d = EdgeValues.Of(r, bits); while (d == 0 || (bits == 64 && (long)d != (int)d));
            var st = ins;
            st.Code = size switch { 1 => Code.Mov_rm8_imm8, 2 => Code.Mov_rm16_imm16, 4 => Code.Mov_rm32_imm32, _ => Code.Mov_rm64_imm32 };
            st.HasLockPrefix = false;
            st.Op1Kind = size switch { 1 => OpKind.Immediate8, 2 => OpKind.Immediate16, 4 => OpKind.Immediate32, _ => OpKind.Immediate32to64 };
            st.SetImmediate(1, d);
            emit.Add(st);
        }

        UInt128 dividend;
        if (!signed)
        {
            ulong q = EdgeValues.Of(r, bits), rem = r.NextU64() % d;
            dividend = (UInt128)q * d + rem;
        }
        else
        {
            Int128 ds = (long)(d << (64 - bits)) >> (64 - bits);
            Int128 q = (long)(EdgeValues.Of(r, bits) << (64 - bits)) >> (64 - bits);
            Int128 prod = q * ds;
            Int128 abs = Int128.Abs(ds);
            Int128 rem = (Int128)(r.NextU64() % (ulong)UInt128.Min((UInt128)abs, ulong.MaxValue));
            if (prod < 0 || (prod == 0 && r.Chance(50))) rem = -rem;
            dividend = (UInt128)(prod + rem);
        }
        ulong lo = (ulong)(dividend & mask), hi = (ulong)((dividend >> bits) & mask);
        ulong junk = r.NextU64();
        if (size == 1)
            emit.Add(MovImm(Register.RAX, (junk & ~0xFFFFUL) | (hi << 8) | lo));
        else
        {
            emit.Add(MovImm(Register.RAX, (junk & ~mask) | lo));
            emit.Add(MovImm(Register.RDX, (r.NextU64() & ~mask) | hi));
        }
    }
}

/// <summary>BT/BTS/BTR/BTC: register bit offsets into memory are kept within a few dozen bytes of the operand.</summary>
internal sealed class BitTestClass(string name) : CodeSetClass(name, [Bt, Bts, Btr, Btc])
{
    protected override ulong? Immediate(CaseContext ctx, Code code, int operand) => (ulong)ctx.Rng.Next(256);

    protected override void Prepare(CaseContext ctx, ref Instruction ins, List<Instruction> emit)
    {
        if (ins.Op0Kind == OpKind.Memory && ins.Op1Kind == OpKind.Register && ctx.Rng.Chance(80))
        {
            long off = ctx.Rng.Next(-300, 300);
            int bits = ins.Op1Register.GetSize() * 8;
            emit.Add(MovImm(ins.Op1Register, (ctx.Rng.NextU64() & ~EdgeValues.Mask(bits)) | ((ulong)off & EdgeValues.Mask(bits))));
        }
    }
}

/// <summary>CMOVcc and SETcc, fed by compares and arithmetic that leave every flag defined.</summary>
internal sealed class ConditionalClass(string name) : CodeSetClass(name, [
    Cmovo, Cmovno, Cmovb, Cmovae, Cmove, Cmovne, Cmovbe, Cmova, Cmovs, Cmovns, Cmovp, Cmovnp, Cmovl, Cmovge, Cmovle, Cmovg,
    Seto, Setno, Setb, Setae, Sete, Setne, Setbe, Seta, Sets, Setns, Setp, Setnp, Setl, Setge, Setle, Setg,
    Cmp, Test, Sub, Add])
{
    public override int MaxSteps => 6;

    protected override Code Pick(CaseContext ctx)
    {
        for (;;)
        {
            var c = base.Pick(ctx);
            bool producer = c.Mnemonic() is Cmp or Test or Sub or Add;
            if (producer == ctx.Rng.Chance(30)) return c;
        }
    }
}

/// <summary>LAHF/SAHF and the direct flag operations, between flag-producing arithmetic.</summary>
internal sealed class FlagOpsClass(string name) : CodeSetClass(name, [Lahf, Sahf, Clc, Stc, Cmc, Add, Sub, Cmp, Adc, Sbb])
{
    public override int MaxSteps => 6;

    protected override Code Pick(CaseContext ctx)
    {
        for (;;)
        {
            var c = base.Pick(ctx);
            bool producer = c.Mnemonic() is Add or Sub or Cmp or Adc or Sbb;
            if (producer == ctx.Rng.Chance(30)) return c;
        }
    }
}

/// <summary>MOV in all its non-system forms (moffs included) and LEA over arbitrary registers and displacements.</summary>
internal sealed class MovLeaClass(string name) : CodeSetClass(name, [Mov, Lea])
{
    protected override void Prepare(CaseContext ctx, ref Instruction ins, List<Instruction> emit)
    {
        if (ins.Mnemonic != Lea) return;
        // LEA never touches memory: any base, index and displacement is fair.
        var r = ctx.Rng;
        bool addr32 = r.Chance(15);
        var first = addr32 ? Register.EAX : Register.RAX;
        ins.MemoryBase = r.Chance(80) ? first + r.Next(16) : (r.Chance(30) ? Register.RIP : Register.None);
        ins.MemoryIndex = r.Chance(60) ? first + r.Next(16) : Register.None;
        if (ins.MemoryIndex != Register.None && ins.MemoryIndex.GetFullRegister() == Register.RSP) ins.MemoryIndex = Register.None;
        ins.MemoryIndexScale = 1 << r.Next(4);
        if (ins.MemoryBase == Register.RIP) { ins.MemoryIndex = Register.None; addr32 = false; }
        ulong disp = (ulong)(long)(int)(uint)EdgeValues.Of(r, 32);
        if (ins.MemoryBase == Register.RIP) disp = ctx.NextRip + disp;
        ins.MemoryDisplacement64 = addr32 ? disp & 0xFFFF_FFFF : disp;
        ins.MemoryDisplSize = addr32 ? 4 : 8;
    }
}

/// <summary>SSE/SSE2 scalar and packed float arithmetic, compares and conversions.</summary>
internal sealed class SseFloatClass : CodeSetClass
{
    private static readonly Mnemonic[] Float =
    [
        Addss, Addsd, Addps, Addpd, Subss, Subsd, Subps, Subpd, Mulss, Mulsd, Mulps, Mulpd, Divss, Divsd, Divps, Divpd,
        Minss, Minsd, Minps, Minpd, Maxss, Maxsd, Maxps, Maxpd, Sqrtss, Sqrtsd, Sqrtps, Sqrtpd, Cmpss, Cmpsd, Cmpps,
        Cmppd, Ucomiss, Ucomisd, Comiss, Comisd, Cvtsi2ss, Cvtsi2sd, Cvtss2si, Cvtsd2si, Cvttss2si, Cvttsd2si, Cvtss2sd,
        Cvtsd2ss, Cvtdq2ps, Cvtps2dq, Cvttps2dq, Cvtdq2pd, Cvtpd2dq, Cvttpd2dq, Cvtps2pd, Cvtpd2ps, Movss, Movsd,
    ];

    private readonly bool _rounding, _flags;

    // STMXCSR stores the sticky exception flags, so it belongs where those are compared.
    public SseFloatClass(string name, bool rounding, bool exceptionFlags)
        : base(name, exceptionFlags ? [.. Float, Stmxcsr] : Float, CpuFeature.Sse | CpuFeature.Sse2)
    {
        _rounding = rounding;
        _flags = exceptionFlags;
    }

    public SseFloatClass(string name, Mnemonic[] mnemonics, CpuFeature requires) : base(name, mnemonics, requires) { }

    protected override bool FloatXmm => true;

    /// <summary>Without the MXCSR focus the sticky exception flags (bits 0-5) are left out of the comparison.</summary>
    public override uint MxcsrCompareMask => _flags ? 0xFFFFu : 0xFFC0u;

    public override void Init(CaseContext ctx)
    {
        base.Init(ctx);
        if (_rounding)
        {
            var r = ctx.Rng;
            uint m = 0x1F80 | ((uint)r.Next(4) << 13);   // rounding control
            if (r.Chance(25)) m |= 1u << 15;             // FTZ
            if (r.Chance(25)) m |= 1u << 6;              // DAZ
            if (r.Chance(25)) m |= (uint)r.Next(64);     // sticky flags already set
            ctx.State.Mxcsr = m;
        }
    }
}

/// <summary>MOVS/STOS/LODS/CMPS/SCAS in every width, with and without REP/REPE/REPNE, in both directions.</summary>
internal sealed class StringClass : InstructionClass
{
    public override string Name => "String";
    public override int MaxSteps => 5;

    public override void Init(CaseContext ctx)
    {
        base.Init(ctx);
        var r = ctx.Rng;
        // RSI, RDI, RCX are the operands here; memory operands are not register-based in this class.
        ctx.Protected = 1 << 4;
        ctx.PtrReg = -1;
        ctx.IdxReg = -1;
        ctx.State.Gprs[6] = ctx.DataAddress + 0x600 + (ulong)r.Next(0xC00);
        ctx.State.Gprs[7] = ctx.DataAddress + 0x600 + (ulong)r.Next(0xC00);
        ctx.State.Gprs[1] = (ulong)r.Next(20);
        if (r.Chance(30)) ctx.State.Rflags |= CpuSnapshot.DF;
        if (r.Chance(30))
        {
            // make CMPS/SCAS runs longer by making both areas agree for a while
            var data = ctx.Native.Data;
            int a = ctx.AreaOffset(ctx.State.Gprs[6]), b = ctx.AreaOffset(ctx.State.Gprs[7]);
            int n = r.Next(64);
            for (int i = -n; i < n; i++) data[b + i] = data[a + i];
        }
    }

    public override bool Next(CaseContext ctx, List<Instruction> emit)
    {
        var r = ctx.Rng;
        int k = r.Next(20);
        if (k == 0) { emit.Add(Instruction.Create(r.Chance(50) ? Code.Std : Code.Cld)); return true; }
        if (k == 1) { emit.Add(Instruction.Create(Code.Mov_r32_imm32, Register.ECX, (uint)r.Next(20))); return true; }
        int size = 1 << r.Next(4);
        int op = r.Next(5);
        var rep = op switch
        {
            <= 2 => r.Chance(60) ? RepPrefixKind.Repe : RepPrefixKind.None,          // F3 = REP for MOVS/STOS/LODS
            _ => r.Next(3) switch { 0 => RepPrefixKind.None, 1 => RepPrefixKind.Repe, _ => RepPrefixKind.Repne },
        };
        emit.Add((op, size) switch
        {
            (0, 1) => Instruction.CreateMovsb(64, Register.None, rep), (0, 2) => Instruction.CreateMovsw(64, Register.None, rep),
            (0, 4) => Instruction.CreateMovsd(64, Register.None, rep), (0, _) => Instruction.CreateMovsq(64, Register.None, rep),
            (1, 1) => Instruction.CreateStosb(64, rep), (1, 2) => Instruction.CreateStosw(64, rep),
            (1, 4) => Instruction.CreateStosd(64, rep), (1, _) => Instruction.CreateStosq(64, rep),
            (2, 1) => Instruction.CreateLodsb(64, Register.None, rep), (2, 2) => Instruction.CreateLodsw(64, Register.None, rep),
            (2, 4) => Instruction.CreateLodsd(64, Register.None, rep), (2, _) => Instruction.CreateLodsq(64, Register.None, rep),
            (3, 1) => Instruction.CreateCmpsb(64, Register.None, rep), (3, 2) => Instruction.CreateCmpsw(64, Register.None, rep),
            (3, 4) => Instruction.CreateCmpsd(64, Register.None, rep), (3, _) => Instruction.CreateCmpsq(64, Register.None, rep),
            (_, 1) => Instruction.CreateScasb(64, rep), (_, 2) => Instruction.CreateScasw(64, rep),
            (_, 4) => Instruction.CreateScasd(64, rep), (_, _) => Instruction.CreateScasq(64, rep),
        });
        return true;
    }
}

/// <summary>
/// Jcc (rel8 and rel32), LOOP/LOOPE/LOOPNE and JRCXZ/JECXZ, each jumping over one flag-neutral instruction,
/// after flag-producing arithmetic: the taken/not-taken decision is visible in that instruction's register, and
/// a taken branch ends the emulator's block, so lazily kept flags must be right at block boundaries.
/// </summary>
internal sealed class BranchClass(string name) : CodeSetClass(name, [Add, Sub, Cmp, Test, And, Or, Xor, Inc, Dec, Neg, Adc, Sbb, Shl, Shr, Sar, Bt, Imul])
{
    private static readonly Code[] Branches = [.. Enum.GetValues<Code>().Where(c =>
    {
        var op = c.ToOpCode();
        return op.IsInstruction && op.Mode64 && op.Encoding == EncodingKind.Legacy && op.OpCount == 1
            && op.Op0Kind is OpCodeOperandKind.br64_1 or OpCodeOperandKind.br64_4 or OpCodeOperandKind.br32_1
            && c.Mnemonic() is not (Jmp or Call or Xbegin) && op.IntelDecoder64 && op.AmdDecoder64
            && op.DecoderOption == DecoderOptions.None && !c.ToString().Contains("Jmpe", StringComparison.Ordinal);
    })];

    public override int MaxSteps => 6;

    public override IReadOnlyList<Code> Codes => [.. base.Codes, .. Branches];

    public override void Init(CaseContext ctx)
    {
        base.Init(ctx);
        if (ctx.Rng.Chance(50)) ctx.State.Gprs[1] = (uint)ctx.Rng.Next(3) | (ctx.Rng.Chance(30) ? 0xFFFF_FFFF_0000_0000UL : 0UL);
    }

    public override bool Next(CaseContext ctx, List<Instruction> emit)
    {
        var r = ctx.Rng;
        if (r.Chance(40)) return base.Next(ctx, emit);
        var branch = Instruction.CreateBranch(r.Pick(Branches), ctx.NextRip);
        int reg;
        do reg = r.Next(16); while (reg is 1 or 4 || (ctx.Protected & (1 << reg)) != 0);
        emit.Add(branch);
        emit.Add(r.Next(4) switch
        {
            0 => Instruction.Create(Code.Mov_r32_imm32, Register.EAX + reg, (uint)r.NextU64()),
            1 => Instruction.Create(Code.Mov_r64_imm64, Register.RAX + reg, r.NextU64()),
            2 => Instruction.Create(Code.Not_rm64, Register.RAX + reg),
            _ => Instruction.Create(Code.Bswap_r64, Register.RAX + reg),
        });
        return true;
    }
}

/// <summary>
/// DIV/IDIV that must raise #DE (zero divisor, or a quotient too wide: including INT_MIN / -1), after arithmetic
/// that leaves fresh flags. The host cannot run these (SIGFPE); the architecture says what happens: the fault is
/// taken at the DIV's address with every register, flag and memory byte as before it.
/// </summary>
internal sealed class DivideErrorClass(string name) : CodeSetClass(name, [Div, Idiv])
{
    public override int? ExpectedFault => 0;
    public override int MaxSteps => 1;

    protected override void Prepare(CaseContext ctx, ref Instruction ins, List<Instruction> emit)
    {
        var r = ctx.Rng;
        if (r.Chance(70))
        {
            var a = OperandFactory.Gpr(r, 8);
            var b = OperandFactory.Gpr(r, 8);
            emit.Add(Instruction.Create(r.Pick([Code.Add_rm64_r64, Code.Sub_rm64_r64, Code.Cmp_rm64_r64, Code.Xor_rm64_r64]), a, b));
        }
        bool signed = ins.Mnemonic == Idiv;
        int size = ins.Op0Kind == OpKind.Register ? ins.Op0Register.GetSize() : ins.MemorySize.GetSize();
        int bits = size * 8;
        ulong mask = EdgeValues.Mask(bits), sign = 1UL << (bits - 1);
        ulong d = r.Next(3) switch { 0 => 0, 1 => signed ? mask : 1, _ => (ulong)r.Next(1, 5) };
        if (ins.Op0Kind == OpKind.Register)
        {
            var reg = ins.Op0Register;
            if (reg.GetFullRegister() is Register.RAX or Register.RDX || reg is >= Register.AH and <= Register.BH) return;
            emit.Add(MovImm(reg, (r.NextU64() & ~mask) | d));
        }
        else
        {
            var st = ins;
            st.Code = size switch { 1 => Code.Mov_rm8_imm8, 2 => Code.Mov_rm16_imm16, 4 => Code.Mov_rm32_imm32, _ => Code.Mov_rm64_imm32 };
            st.HasLockPrefix = false;
            st.Op1Kind = size switch { 1 => OpKind.Immediate8, 2 => OpKind.Immediate16, 4 => OpKind.Immediate32, _ => OpKind.Immediate32to64 };
            st.SetImmediate(1, d);
            emit.Add(st);
        }
        // Dividend: INT_MIN (with d = -1), or a high half at least as large as the divisor.
        ulong hi = signed ? (r.Chance(50) ? mask : 0) : d + (ulong)r.Next(0, 3), lo = r.NextU64() & mask;
        if (signed && d == mask) { hi = mask; lo = sign; }
        else if (signed && d != 0) { hi = (ulong)r.Next(1, 4) & mask; }
        hi &= mask;
        if (size == 1) emit.Add(MovImm(Register.RAX, (r.NextU64() & ~0xFFFFUL) | (hi << 8) | lo));
        else
        {
            emit.Add(MovImm(Register.RAX, (r.NextU64() & ~mask) | lo));
            emit.Add(MovImm(Register.RDX, (r.NextU64() & ~mask) | hi));
        }
    }
}

/// <summary>
/// TZCNT's encoding (F3 0F BC) on a CPU without BMI1 is REP BSF, which runs as BSF: Linux's __ffs emits it for
/// either kind of CPU and only ever passes a nonzero source, where TZCNT and BSF give the same index. So when the
/// emulator hides BMI1 it must still get that index right; the flags (defined differently by the two) are not compared.
/// </summary>
internal sealed class RepBsfClass(string name) : CodeSetClass(name, [Tzcnt])
{
    public override CpuFeature HostRequires => CpuFeature.Bmi1;

    public override string? SkipFor(CpuFeature emulatorFeatures) =>
        (emulatorFeatures & CpuFeature.Bmi1) != 0 ? "the emulator advertises BMI1, so the Tzcnt class covers F3 0F BC" : null;

    // The host runs real TZCNT: BMI1 is needed there, whatever the emulator advertises.
    public override IReadOnlyList<string> Restrict(CpuFeature available) => base.Restrict(available | CpuFeature.Bmi1);

    public override void Init(CaseContext ctx)
    {
        base.Init(ctx);
        ctx.UnspecifiedFlags = CpuSnapshot.StatusFlags;
    }

    protected override void Prepare(CaseContext ctx, ref Instruction ins, List<Instruction> emit)
    {
        var r = ctx.Rng;
        int size = ins.Op0Register.GetSize();
        ulong v;
        do v = EdgeValues.Of(r, size * 8); while (v == 0);
        if (ins.Op1Kind == OpKind.Register)
        {
            emit.Add(MovImm(ins.Op1Register, (r.NextU64() & ~EdgeValues.Mask(size * 8)) | v));
            return;
        }
        if (size == 8)
        {
            v = (ulong)(long)(int)(uint)v; // mov r/m64, imm32 sign-extends
            if (v == 0) v = 1;
        }
        var st = ins;
        st.Code = size switch { 2 => Code.Mov_rm16_imm16, 4 => Code.Mov_rm32_imm32, _ => Code.Mov_rm64_imm32 };
        st.Op0Kind = OpKind.Memory;
        st.Op1Kind = size switch { 2 => OpKind.Immediate16, 4 => OpKind.Immediate32, _ => OpKind.Immediate32to64 };
        st.SetImmediate(1, v);
        emit.Add(st);
    }
}

/// <summary>
/// PUSH and POP in every operand form and size (register, memory, sign-extended immediates, 16-bit with 66h) and
/// CALL to the next instruction, over a randomised stack window that is compared byte for byte. The classic traps:
/// PUSH RSP pushes the old value, POP [mem] with a 16-bit size moves RSP by 2.
/// </summary>
internal sealed class StackClass(string name) : CodeSetClass(name, [Push, Pop])
{
    public override int MaxSteps => 6;

    public override bool Next(CaseContext ctx, List<Instruction> emit)
    {
        if (ctx.Rng.Chance(15))
        {
            emit.Add(Instruction.CreateBranch(Code.Call_rel32_64, ctx.NextRip + 5));
            return true;
        }
        return base.Next(ctx, emit);
    }
}
