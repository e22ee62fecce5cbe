using Iced.Intel;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// One family of instructions under test: how a case starts (registers, flags, XMM, data buffer) and what
/// instruction comes next. Each class is one xunit test with its own base seed.
/// </summary>
internal abstract class InstructionClass
{
    private static readonly int[] PointerCandidates = [3, 5, 8, 9, 10, 11, 12, 13, 14, 15];

    public abstract string Name { get; }

    /// <summary>Stable per-class seed (FNV-1a of the name), overridable with SHARPVMM_DIFF_SEED.</summary>
    public ulong BaseSeed
    {
        get
        {
            ulong h = 0xCBF2_9CE4_8422_2325UL;
            foreach (char c in Name) h = (h ^ c) * 0x100_0000_01B3UL;
            return h;
        }
    }

    public virtual int Cases => 4000;
    public virtual int MaxSteps => 4;
    /// <summary>Set by classes whose cases end in an instruction that must fault with this vector (the host cannot run it).</summary>
    public virtual int? ExpectedFault => null;

    /// <summary>Features the whole class needs (else it is skipped, and says so).</summary>
    public virtual CpuFeature Requires => CpuFeature.None;
    /// <summary>Which MXCSR bits must match; float classes that do not test exception flags leave out bits 0-5.</summary>
    public virtual uint MxcsrCompareMask => 0xFFFF;
    /// <summary>Whether XMM registers start as float lanes (else integer edge lanes).</summary>
    protected virtual bool FloatXmm => false;

    /// <summary>Features the host CPU needs to produce the expected results (usually <see cref="Requires"/>).</summary>
    public virtual CpuFeature HostRequires => Requires;

    /// <summary>A reason to skip the class given the emulator's CPUID features, or null to run it.</summary>
    public virtual string? SkipFor(CpuFeature emulatorFeatures) => null;

    /// <summary>Drops instructions that need a feature missing from <paramref name="available"/>; returns what was dropped.</summary>
    public virtual IReadOnlyList<string> Restrict(CpuFeature available) => [];

    public virtual void Init(CaseContext ctx)
    {
        var r = ctx.Rng;
        for (int i = 0; i < 16; i++) ctx.State.Gprs[i] = EdgeValues.Register(r);
        int p = r.Pick(PointerCandidates), q;
        do q = r.Pick(PointerCandidates); while (q == p);
        ctx.PtrReg = p;
        ctx.IdxReg = q;
        ctx.Protected |= (ushort)((1 << p) | (1 << q));
        ctx.State.Gprs[p] = ctx.DataAddress + 0x1000 + (ulong)(r.Next(512) - 256);
        ctx.State.Gprs[q] = (ulong)r.Next(64);
        ctx.State.Rflags = r.NextU64() & CpuSnapshot.StatusFlags;
        for (int i = 0; i < 16; i++)
        {
            var x = ctx.State.Xmm.AsSpan(i * 16, 16);
            if (FloatXmm) EdgeValues.FloatVector(r, x); else EdgeValues.IntVector(r, x);
        }
        var data = ctx.Native.Data;
        r.Fill(data);
        for (int k = 0; k < 64; k++)
        {
            int at = r.Next(data.Length - 8);
            ulong v = FloatXmm ? (r.Chance(50) ? EdgeValues.Float64(r) : EdgeValues.Float32(r)) : EdgeValues.Register(r);
            BitConverter.TryWriteBytes(data[at..], v);
        }
    }

    /// <summary>Appends the next instruction (possibly after setup instructions); false to try again.</summary>
    public abstract bool Next(CaseContext ctx, List<Instruction> emit);
}

/// <summary>A class made of every 64-bit legacy encoding of some mnemonics, operands filled generically.</summary>
internal class CodeSetClass : InstructionClass
{
    private readonly string _name;
    private Code[] _codes;

    public CodeSetClass(string name, Mnemonic[] mnemonics, CpuFeature requires = CpuFeature.None, Func<Code, bool>? filter = null, bool vex = false)
    {
        _name = name;
        Requires = requires;
        var set = new HashSet<Mnemonic>(mnemonics);
        _codes = [.. Enum.GetValues<Code>().Where(c =>
        {
            var op = c.ToOpCode();
            return op.IsInstruction && op.Mode64 && (op.Encoding == EncodingKind.Legacy || (vex && op.Encoding == EncodingKind.VEX)) && op.AmdDecoder64 && op.IntelDecoder64
                && op.DecoderOption == DecoderOptions.None && set.Contains(c.Mnemonic()) && OperandFactory.Supports(c)
                && (filter is null || filter(c)) && (CpuFeatures.Required(c) & CpuFeature.Unknown) == 0;
        })];
        if (_codes.Length == 0) throw new InvalidOperationException($"class {name}: no encodings matched");
    }

    public override string Name => _name;
    public override CpuFeature Requires { get; }
    /// <summary>Every encoding the class may generate (for the coverage line of the test output).</summary>
    public virtual IReadOnlyList<Code> Codes => _codes;

    public override IReadOnlyList<string> Restrict(CpuFeature available)
    {
        var dropped = _codes.Where(c => (CpuFeatures.Required(c) & ~available) != 0).Select(c => $"{c} (needs {CpuFeatures.Required(c) & ~available})").ToList();
        _codes = [.. _codes.Where(c => (CpuFeatures.Required(c) & ~available) == 0)];
        return dropped;
    }

    public override bool Next(CaseContext ctx, List<Instruction> emit)
    {
        if (_codes.Length == 0) return false;
        var code = Pick(ctx);
        var ins = OperandFactory.Build(ctx, code, i => Immediate(ctx, code, i));
        Prepare(ctx, ref ins, emit);
        emit.Add(ins);
        return true;
    }

    protected virtual Code Pick(CaseContext ctx) => ctx.Rng.Pick(_codes);

    /// <summary>A class-specific immediate for operand <paramref name="operand"/>, or null for the default edge values.</summary>
    protected virtual ulong? Immediate(CaseContext ctx, Code code, int operand)
    {
        var m = code.Mnemonic();
        if (FlagEffects.IsShiftOrRotate(m) || m is Mnemonic.Psllw or Mnemonic.Pslld or Mnemonic.Psllq or Mnemonic.Psrlw
            or Mnemonic.Psrld or Mnemonic.Psrlq or Mnemonic.Psraw or Mnemonic.Psrad or Mnemonic.Pslldq or Mnemonic.Psrldq)
            return EdgeValues.Count(ctx.Rng);
        if (m is Mnemonic.Cmpss or Mnemonic.Cmpsd or Mnemonic.Cmpps or Mnemonic.Cmppd) return (ulong)ctx.Rng.Next(8);
        return null;
    }

    /// <summary>Setup instructions that make <paramref name="ins"/> meaningful (or safe) in the current state.</summary>
    protected virtual void Prepare(CaseContext ctx, ref Instruction ins, List<Instruction> emit) { }

    /// <summary>mov r64, imm64 into the full register of <paramref name="reg"/>.</summary>
    protected static Instruction MovImm(Register reg, ulong value) =>
        Instruction.Create(Code.Mov_r64_imm64, reg.GetFullRegister(), value);
}
