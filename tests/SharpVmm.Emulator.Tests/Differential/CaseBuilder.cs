using Iced.Intel;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// Builds a case one instruction at a time on the host CPU: each candidate is encoded at its final address,
/// checked against the exact state it will meet (no write to a protected register, no read of an undefined
/// flag, every memory access inside the data buffer, no #DE, no undefined result), run natively from that
/// state, and appended. So the sequence is known safe, the expected final state comes from the host, and the
/// undefined-flag mask follows the sequence exactly.
/// </summary>
internal sealed class CaseBuilder
{
    private const int Guard = 32;
    private readonly NativeRunner _native;
    private readonly InstructionInfoFactory _info = new();
    private readonly List<Instruction> _emit = [];

    public CaseBuilder(NativeRunner native) => _native = native;

    /// <summary>Candidates generated and candidates refused (encoding, safety), for the generators' own health.</summary>
    public long Candidates { get; private set; }
    public Dictionary<string, long> Refusals { get; } = [];
    /// <summary>Encodings (as generated) that made it into a case since the last <see cref="ResetStats"/>.</summary>
    public HashSet<Code> Accepted { get; } = [];

    public void ResetStats()
    {
        Candidates = 0;
        Refusals.Clear();
        Accepted.Clear();
    }

    private bool Refuse(string why)
    {
        Refusals[why] = Refusals.GetValueOrDefault(why) + 1;
        return false;
    }

    public DiffCase Build(InstructionClass cls, ulong seed, int index)
    {
        var ctx = new CaseContext(new DiffRandom(seed), _native);
        ctx.Native.Data.Clear();
        cls.Init(ctx);
        ctx.State.Gprs[4] = _native.StackTopAddress;
        ctx.State.Rflags = NativeRunner.SanitizeFlags(ctx.State.Rflags);
        ctx.State.Mxcsr = NativeRunner.SanitizeMxcsr(ctx.State.Mxcsr);
        var initial = ctx.State.Clone();
        var initialData = ctx.Native.Data.ToArray();

        var code = new List<byte>();
        var instructions = new List<Instruction>();
        var stepStates = new List<(int, CpuSnapshot, byte[], ulong)>();
        int steps = ctx.Rng.Next(1, cls.MaxSteps + 1);
        bool faulted = false;
        for (int s = 0; s < steps; s++)
        {
            bool placed = false;
            for (int attempt = 0; attempt < 40 && !placed; attempt++)
            {
                _emit.Clear();
                if (!cls.Next(ctx, _emit)) continue;
                int done = 0;
                while (done < _emit.Count)
                {
                    if (cls.ExpectedFault is not null && s == steps - 1 && done == _emit.Count - 1)
                    {
                        // The faulting instruction ends the case; the host never runs it.
                        if (!TryAppendFaulting(ctx, _emit[done], code, instructions)) break;
                        faulted = true;
                        done++;
                        continue;
                    }
                    // A branch travels with the instruction it may skip: they run natively as one step.
                    int n = IsBranch(_emit[done]) && done + 1 < _emit.Count ? 2 : 1;
                    if (!TryStep(ctx, _emit.GetRange(done, n), code, instructions)) break;
                    stepStates.Add((instructions.Count, ctx.State, ctx.Native.Data.ToArray(), ctx.UndefinedFlags));
                    done += n;
                }
                placed = done == _emit.Count;
            }
        }
        if (instructions.Count == 0 || (cls.ExpectedFault is not null && !faulted))
            throw new InvalidOperationException($"class {cls.Name}: no valid instruction in 40 attempts (seed 0x{seed:x}); the generator is broken");
        code.Add(0xF4);
        return new DiffCase
        {
            Seed = seed, Index = index, Initial = initial, InitialData = initialData, Instructions = instructions,
            Code = [.. code], CodeAddress = _native.CodeAddress, Expected = ctx.State.Clone(),
            ExpectedData = ctx.Native.Data.ToArray(), UndefinedFlags = ctx.UndefinedFlags, Steps = stepStates,
            FaultVector = cls.ExpectedFault, FaultAddress = faulted ? instructions[^1].IP : 0,
        };
    }

    private static bool IsBranch(in Instruction ins) =>
        ins.FlowControl is FlowControl.ConditionalBranch or FlowControl.UnconditionalBranch;

    /// <summary>
    /// Encodes <paramref name="group"/> at the next address (a leading branch is aimed just past the group), checks
    /// it against the current state, runs it natively and appends it. False, with nothing changed, if refused.
    /// </summary>
    private bool TryStep(CaseContext ctx, List<Instruction> group, List<byte> code, List<Instruction> instructions)
    {
        Candidates++;
        ulong rip = ctx.NextRip;
        var bytes = new List<byte>();
        var decoded = new List<Instruction>();
        if (group.Count > 1)
        {
            // Lengths first (a rel8/rel32 branch has the same length for any target in range), then the real target.
            var probe = group[0];
            probe.NearBranch64 = rip + 2;
            if (!TryEncode(probe, rip, out var pb)) return Refuse("encode");
            ulong at = rip + (ulong)pb.Length;
            var rest = new List<byte>();
            for (int i = 1; i < group.Count; i++)
            {
                if (!TryEncode(group[i], at + (ulong)rest.Count, out var b)) return Refuse("encode");
                rest.AddRange(b);
            }
            var branch = group[0];
            branch.NearBranch64 = at + (ulong)rest.Count;
            if (!TryEncode(branch, rip, out var bb) || bb.Length != pb.Length) return Refuse("encode");
            bytes.AddRange(bb);
            bytes.AddRange(rest);
        }
        else
        {
            if (!TryEncode(group[0], rip, out var b)) return Refuse("encode");
            bytes.AddRange(b);
        }
        byte[] all = [.. bytes];
        if (rip + (ulong)all.Length + 16 > _native.CodeAddress + DiffLayout.CodeSize) return false;

        // From here on the decoded form is the truth: it is what both CPUs will see.
        var dec = Decoder.Create(64, new ByteArrayCodeReader(all));
        dec.IP = rip;
        ulong modified = 0, undefined = ctx.UndefinedFlags;
        while (dec.IP < rip + (ulong)all.Length)
        {
            var ins = dec.Decode();
            if (ins.IsInvalid) return Refuse("decode");
            if (!Safe(ctx, ins)) return Refuse("unsafe");
            var (m, u) = FlagEffects.Of(ins, ctx);
            u |= m & ctx.UnspecifiedFlags;
            // Only the first instruction of a group surely runs, so only it may touch flags.
            if (decoded.Count > 0 && m != 0) return Refuse("flags in a skippable instruction");
            undefined = (undefined & ~m) | u;
            modified |= m;
            decoded.Add(ins);
        }
        if (decoded.Count != group.Count) return Refuse("decode");

        ctx.State = _native.Run(ctx.State, all, rip);
        ctx.UndefinedFlags = undefined;
        ctx.NextRip = rip + (ulong)all.Length;
        code.AddRange(all);
        instructions.AddRange(decoded);
        foreach (var g in group) Accepted.Add(g.Code);
        return true;
    }

    /// <summary>Appends an instruction that must raise <see cref="InstructionClass.ExpectedFault"/> in the current state, unexecuted.</summary>
    private bool TryAppendFaulting(CaseContext ctx, Instruction candidate, List<byte> code, List<Instruction> instructions)
    {
        Candidates++;
        ulong rip = ctx.NextRip;
        if (!TryEncode(candidate, rip, out var bytes)) return Refuse("encode");
        var dec = Decoder.Create(64, new ByteArrayCodeReader(bytes));
        dec.IP = rip;
        var ins = dec.Decode();
        if (ins.IsInvalid || ins.Length != bytes.Length) return Refuse("decode");
        if (!Safe(ctx, ins, expectDivideFault: true)) return Refuse("does not fault");
        ctx.NextRip = rip + (ulong)bytes.Length;
        code.AddRange(bytes);
        instructions.Add(ins);
        Accepted.Add(candidate.Code);
        return true;
    }

    private static bool TryEncode(in Instruction ins, ulong rip, out byte[] bytes)
    {
        var w = new ByteWriter();
        var enc = Encoder.Create(64, w);
        bool ok = enc.TryEncode(ins, rip, out _, out _);
        bytes = ok ? w.ToArray() : [];
        return ok;
    }

    /// <summary>
    /// True when <paramref name="ins"/> can run on the host in the current state without harm or undefined results;
    /// with <paramref name="expectDivideFault"/>, true only for a DIV/IDIV that raises #DE (and is otherwise harmless).
    /// </summary>
    private bool Safe(CaseContext ctx, in Instruction ins, bool expectDivideFault = false)
    {
        if (ins.HasLockPrefix && !ins.Code.ToOpCode().CanUseLockPrefix) return false; // #UD
        if (ins.FlowControl == FlowControl.Call && (ins.Op0Kind != OpKind.NearBranch64 || ins.NearBranchTarget != ins.NextIP)) return false;
        if (IsBranch(ins) && (ins.Op0Kind is not (OpKind.NearBranch64 or OpKind.NearBranch32)
            || ins.NearBranchTarget < ins.NextIP || ins.NearBranchTarget > ins.NextIP + 16)) return false; // forward, inside the group only
        if ((FlagEffects.ToX86(ins.RflagsRead) & ctx.UndefinedFlags) != 0) return false;

        var info = _info.GetInfo(ins);
        foreach (var u in info.GetUsedRegisters())
        {
            if (u.Access is not (OpAccess.Write or OpAccess.ReadWrite or OpAccess.CondWrite or OpAccess.ReadCondWrite)) continue;
            var full = u.Register.GetFullRegister();
            if (full == Register.RIP) return false;
            // RSP moves only through PUSH/POP/CALL themselves, never as an explicit operand (POP RSP, ADD RSP).
            if (full == Register.RSP && (!ins.Code.ToOpCode().IsStackInstruction || NamesRsp(ins))) return false;
            if (full.IsGPR64() && full != Register.RSP && (ctx.Protected & (1 << (full - Register.RAX))) != 0) return false;
        }

        var m = ins.Mnemonic;
        if (ins.Code.IsStringInstruction()) return StringRangeOk(ctx, ins);
        ulong firstVa = 0;
        foreach (var mem in info.GetUsedMemory())
        {
            if (mem.Access == OpAccess.NoMemAccess) continue;
            var copy = ins;
            if (!mem.TryGetVirtualAddress(0, out ulong va, (Register reg, int _, int _, out ulong value) => RegisterValue(ctx, copy, reg, out value)))
                return false;
            int size = mem.MemorySize.GetSize();
            if (size <= 0) return false;
            if (m is Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc && ins.Op1Kind == OpKind.Register)
            {
                // The bit offset register addresses memory outside the operand: signed offset / width.
                long off = SignExtend(ctx.Value(ins.Op1Register), size * 8);
                va = (ulong)((long)va + (off >> (size == 2 ? 4 : size == 4 ? 5 : 6)) * size);
            }
            bool implicitStack = mem.Base.GetFullRegister() == Register.RSP; // generators never build RSP-based operands
            if (implicitStack ? !InStackWindow(ctx, va, (ulong)size) : !InData(ctx, va, (ulong)size)) return false;
            if (firstVa == 0 && !implicitStack) firstVa = va;
            if (OperandFactory.AlignmentOf(ins.Code, size) is int a && a > 1 && va % (ulong)a != 0) return false;
        }

        if (expectDivideFault) return m is Mnemonic.Div or Mnemonic.Idiv && DivideFaults(ctx, ins, firstVa);
        if (m is Mnemonic.Div or Mnemonic.Idiv) return !DivideFaults(ctx, ins, firstVa);
        if (m is Mnemonic.Shld or Mnemonic.Shrd && FlagEffects.Width(ins) == 16 && FlagEffects.MaskedCount(ins, ctx) > 16) return false; // undefined result
        return true;
    }

    private static bool RegisterValue(CaseContext ctx, in Instruction ins, Register reg, out ulong value)
    {
        if (reg.IsSegmentRegister()) { value = 0; return true; }
        if (reg == Register.RIP) { value = ins.NextIP; return true; }
        if (reg == Register.EIP) { value = ins.NextIP & 0xFFFF_FFFF; return true; }
        if (!reg.IsGPR()) { value = 0; return false; }
        value = ctx.Value(reg);
        return true;
    }

    private static bool NamesRsp(in Instruction ins)
    {
        for (int i = 0; i < ins.OpCount; i++)
            if (ins.GetOpKind(i) == OpKind.Register && ins.GetOpRegister(i).GetFullRegister() == Register.RSP) return true;
        return false;
    }

    private static bool InStackWindow(CaseContext ctx, ulong va, ulong size) =>
        va >= ctx.Native.Base + DiffLayout.StackWindowLow + Guard && va + size <= ctx.Native.Base + DiffLayout.StackWindowHigh - Guard;

    private static bool InData(CaseContext ctx, ulong va, ulong size) =>
        va >= ctx.DataAddress + Guard && va + size <= ctx.DataAddress + DiffLayout.DataSize - Guard && va + size > va;

    private static bool StringRangeOk(CaseContext ctx, in Instruction ins)
    {
        if (ins.HasSegmentPrefix && ins.SegmentPrefix is Register.FS or Register.GS) return false;
        bool rep = ins.HasRepPrefix || ins.HasRepePrefix || ins.HasRepnePrefix;
        ulong count = rep ? ctx.Gpr(1) : 1;
        if (ins.MemorySize.GetSize() is not (1 or 2 or 4 or 8) || ins.CodeSize != CodeSize.Code64) return false;
        if (count == 0) return true;
        if (count > 64) return false;
        ulong size = (ulong)ins.MemorySize.GetSize();
        bool down = (ctx.State.Rflags & CpuSnapshot.DF) != 0;
        for (int i = 0; i < ins.OpCount; i++)
        {
            ulong start = ins.GetOpKind(i) switch
            {
                OpKind.MemorySegRSI => ctx.Gpr(6),
                OpKind.MemoryESRDI => ctx.Gpr(7),
                OpKind.Register => 0,
                _ => ulong.MaxValue,
            };
            if (start == 0) continue;
            if (start == ulong.MaxValue) return false;
            ulong lo = down ? start - (count - 1) * size : start;
            if (!InData(ctx, lo, count * size)) return false;
        }
        return true;
    }

    private static long SignExtend(ulong v, int bits) => bits >= 64 ? (long)v : (long)(v << (64 - bits)) >> (64 - bits);

    /// <summary>Exactly the SDM's #DE conditions: a zero divisor or a quotient that does not fit.</summary>
    public static bool DivideFaults(CaseContext ctx, in Instruction ins, ulong memoryAddress)
    {
        int size = ins.Op0Kind == OpKind.Register ? ins.Op0Register.GetSize() : ins.MemorySize.GetSize();
        ulong divisor;
        if (ins.Op0Kind == OpKind.Register) divisor = ctx.Value(ins.Op0Register);
        else
        {
            if (!InData(ctx, memoryAddress, (ulong)size)) return true;
            divisor = ctx.ReadData(memoryAddress, size);
        }
        if (divisor == 0) return true;
        int bits = size * 8;
        ulong hi, lo;
        if (size == 1) { ulong ax = ctx.Value(Register.AX); hi = ax >> 8; lo = ax & 0xFF; }
        else if (size == 2) { hi = ctx.Value(Register.DX); lo = ctx.Value(Register.AX); }
        else if (size == 4) { hi = ctx.Value(Register.EDX); lo = ctx.Value(Register.EAX); }
        else { hi = ctx.Gpr(2); lo = ctx.Gpr(0); }

        if (ins.Mnemonic == Mnemonic.Div) return hi >= divisor; // quotient ≥ 2^bits
        Int128 dividend = ((Int128)SignExtend(hi, bits) << bits) | (Int128)(UInt128)lo;
        Int128 d = SignExtend(divisor, bits);
        if (d == -1) return dividend == -(Int128.One << (2 * bits - 1)) || -dividend > MaxSigned(bits) || -dividend < MinSigned(bits);
        Int128 q = dividend / d;
        return q > MaxSigned(bits) || q < MinSigned(bits);
    }

    private static Int128 MaxSigned(int bits) => (Int128.One << (bits - 1)) - 1;
    private static Int128 MinSigned(int bits) => -(Int128.One << (bits - 1));
}
