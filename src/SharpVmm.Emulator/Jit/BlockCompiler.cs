using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Jit;

/// <summary>
/// Turns the longest translatable prefix of a block's ops into x86-64 host code. Guest registers stay in the native
/// register file (<c>rdi</c> = <see cref="X86Cpu.R"/>); each guest ALU instruction is emitted as itself at its own
/// size, so the host flags are the guest's flags, and the glue between instructions only uses MOV, MOVZX/MOVSX and
/// LEA, which leave the flags alone. At the exit the flags are saved once, as the eager form the interpreter reads.
/// One instance per vCPU thread (not thread-safe).
/// </summary>
internal sealed partial class BlockCompiler
{
    private readonly HostLinker _linker = new();
    // Reused (Reset keeps the instruction list's capacity): a new one per block showed as GC work in a boot.
    private readonly Assembler _assembler = new(64);

    /// <summary>
    /// Result of <see cref="Emit"/>: the code (position-independent, with the <see cref="Translation.HeaderBytes"/>
    /// header in front), what it covers, and per chain slot the offset of its exit stub (what the slot holds until it
    /// is patched) and the key of the block it leads to.
    /// </summary>
    public readonly record struct Output(byte[] Code, int Covered, bool NeedsFlagsIn, int GuestInstrs, int[] StubOffsets, ulong[] Targets);

    /// <summary>Emits code for <paramref name="b"/> as translation <paramref name="id"/>, or returns false when its first op is not translatable.</summary>
    public bool Emit(Block b, int id, out Output output)
    {
        output = default;
        var ops = b.Ops;
        bool long64 = (int)(b.Key >> 56) == 64;
        int covered = 0;
        bool written = false, needsIn = false, ofUndefined = false, hasMemory = false, lastIsShift = false;
        int instrs = 0;
        while (covered < ops.Length)
        {
            ref Op op = ref ops[covered];
            var (form, alu) = OpForms.Of(ref op);
            if (!Supported(ref op, form, alu, long64)) break;
            // A shift by more than one leaves OF undefined on the host: a Jcc that reads it is left to the interpreter.
            if (form is OpForm.Jcc or OpForm.SetccR or OpForm.SetccM or OpForm.CmovRR or OpForm.CmovRM && ofUndefined && op.Cc is 0 or 1 or >= 12) break;
            if (ReadsFlags(form, alu) && !written) needsIn = true;
            if (WritesFlags(form, alu))
            {
                written = true;
                ofUndefined = form == OpForm.ShiftImm && op.Imm > 1; // the other writers leave exact flags
                lastIsShift = form == OpForm.ShiftImm;
            }
            if (form is OpForm.BitTestR or OpForm.BitTestM) written = true; // CF written, the rest kept (read above)
            instrs += form is OpForm.FusedRR or OpForm.FusedRI ? 2 : 1;
            hasMemory |= IsMemory(form);
            covered++;
            if (IsClosing(form)) break; // always last
        }
        if (covered == 0) return false;

        var a = _assembler;
        a.Reset();
        var s = new EmitState
        {
            Id = id,
            Count = b.InstrCount,
            Key = b.Key,
            Ops = ops,
            Covered = covered,
            Chain = long64,
            IpSize = long64 ? 8 : (int)(b.Key >> 56) / 8,
            Valid = a.CreateLabel(),
            Leave = a.CreateLabel(),
            EntryExit = a.CreateLabel(),
        };
        // Header: the valid word (zeroed by Kill), the chain slots (filled in by the engine), padding.
        a.Label(ref s.Valid);
        a.dq(1);
        for (int i = 0; i < Translation.MaxSlots; i++)
        {
            s.SlotLabels[i] = a.CreateLabel();
            a.Label(ref s.SlotLabels[i]);
            a.dq(0);
        }
        // Entry (also reached from other blocks): a killed translation, a vCPU wanted by the dispatcher (an event, a
        // kick, a flush) or a spent chain budget go back to the dispatcher before anything runs.
        a.cmp(__qword_ptr[s.Valid], 0);
        a.je(s.EntryExit);
        a.cmp(__dword_ptr[rdi + 8 * X86Cpu.JitAttnSlot], 0);
        a.jne(s.EntryExit);
        a.sub(__dword_ptr[rdi + 8 * X86Cpu.JitBudgetSlot], 1);
        a.jb(s.EntryExit);
        ref Op lastOp = ref ops[covered - 1];
        var lastForm = OpForms.Of(ref lastOp).Form;
        // A block that branches back to its own start loops inside its code, up to LoopBudget passes per entry
        // (so events are still looked at every few microseconds).
        // (Not when a shift writes the flags last: its undefined OF/AF would flow into the next pass.)
        s.Loops = covered == ops.Length && lastOp.Imm == 0 && !lastIsShift && lastForm is OpForm.Jcc or OpForm.JmpRel or OpForm.FusedRR or OpForm.FusedRI;
        if (s.Loops) a.mov(r8d, LoopBudget);
        if (s.Loops && written && hasMemory)
        {
            // A memory op's miss exit in a later pass leaves flags the previous pass wrote: so every exit saves
            // the flags, which must then be the guest's from the start.
            needsIn = true;
            s.Written = true;
            s.Last = LastWriter.Arith; // the entry load is exact; later writers set Last as they come
        }
        s.FlagsLive = needsIn;
        if (needsIn) LoadFlags(a);
        s.Body = a.CreateLabel();
        a.Label(ref s.Body);
        for (int i = 0; i < covered; i++)
        {
            ref Op op = ref ops[i];
            var (form, alu) = OpForms.Of(ref op);
            switch (form)
            {
                case OpForm.BinRR: EmitBinRR(a, ref op, alu); break;
                case OpForm.BinRI: EmitBinRI(a, ref op, alu); break;
                case OpForm.UnR: EmitUnR(a, ref op, alu); break;
                case OpForm.MovRR: EmitMovRR(a, ref op); break;
                case OpForm.MovRI: EmitMovRI(a, ref op); break;
                case OpForm.MovxRR: EmitMovx(a, ref op); break;
                case OpForm.Lea: EmitLea(a, ref op); break;
                case OpForm.Nop: break;
                case OpForm.ShiftImm: EmitShift(a, ref op); break;
                case OpForm.SetccR: Ins(a, Instruction.Create(HostCodes.SetForm(op.Cc), Slot(op.Reg))); break;
                case OpForm.CmovRR:
                {
                    // A CMOV always writes its destination (a 32-bit one is zero-extended even when not taken).
                    int sz = op.Size;
                    Ins(a, Instruction.Create(Load(sz), Rax(sz), Slot(op.Reg)));
                    Ins(a, Instruction.Create(HostCodes.CmovForm(op.Cc, sz), Rax(sz), Slot(op.Rm)));
                    Ins(a, Instruction.Create(Store(sz == 4 ? 8 : sz), Slot(op.Reg), sz == 4 ? Register.RAX : Rax(sz)));
                    break;
                }
                case OpForm.MovRM:
                case OpForm.MovMR:
                case OpForm.MovMI:
                case OpForm.MovxRM:
                case OpForm.BinRM:
                case OpForm.BinMR:
                case OpForm.BinMI:
                case OpForm.UnM:
                case OpForm.ImulRM:
                case OpForm.CmovRM:
                    EmitMemory(a, ref op, form, alu, s, i);
                    break;
                case OpForm.ImulRR:
                    EmitImul(a, ref op, Slot(op.Rm));
                    break;
                case OpForm.ShiftR:
                    EmitShiftR(a, ref op, s, i);
                    break;
                case OpForm.PushR:
                case OpForm.PushI:
                case OpForm.PopR:
                    EmitStack(a, ref op, form, s, i);
                    break;
                case OpForm.MulDivR:
                case OpForm.MulDivM:
                    EmitDiv(a, ref op, s, i);
                    break;
                case OpForm.SetccM:
                    EmitSetccM(a, ref op, s, i);
                    break;
                case OpForm.BitTestR:
                case OpForm.BitTestM:
                    EmitBitTest(a, ref op, form, s, i);
                    break;
                case OpForm.Bswap: EmitBswap(a, ref op); break;
                case OpForm.Cbw: EmitCbw(a, ref op); break;
                case OpForm.Cwd: EmitCwd(a, ref op); break;
                case OpForm.CmpxchgM:
                case OpForm.XaddM:
                    EmitAtomic(a, ref op, form, s, i);
                    break;
                case OpForm.Leave:
                    EmitLeave(a, s, i);
                    break;
                case OpForm.PushF:
                    EmitPushF(a, s, i);
                    break;
                case OpForm.CallRel:
                case OpForm.Ret:
                case OpForm.JmpR:
                case OpForm.CallR:
                case OpForm.CallM:
                case OpForm.JmpM:
                    EmitTransfer(a, ref op, form, s, i);
                    continue;
                case OpForm.Jcc:
                case OpForm.JmpRel:
                case OpForm.FusedRR:
                case OpForm.FusedRI:
                    if (form is OpForm.FusedRR or OpForm.FusedRI) EmitFusedCompare(a, ref op, form, alu);
                    if (WritesFlags(form, alu)) { s.Written = true; s.Last = alu == AluOp.Test ? LastWriter.Logic : LastWriter.Arith; }
                    EmitBranchExit(a, ref op, form, s);
                    continue;
            }
            if (WritesFlags(form, alu)) s.FlagsLive = true;
            if (form is OpForm.BitTestR or OpForm.BitTestM)
            {
                // CF written, the rest kept: exact if they were loaded at entry (MakeExact ran before otherwise).
                if (!s.Written) s.Last = LastWriter.Arith;
                s.Written = true;
                s.FlagsLive = true;
            }
            else if (form is OpForm.ImulRR or OpForm.ImulRM or OpForm.ShiftR)
            {
                s.Written = true;
                s.Last = LastWriter.Arith; // made exact where emitted
            }
            else if (form == OpForm.ShiftImm)
            {
                s.Written = true;
                s.Last = op.Cc is 4 or 6 ? LastWriter.Shl : op.Cc == 5 && op.Imm == 1 ? LastWriter.Shr1 : LastWriter.ShrOrSar;
            }
            else if (WritesFlags(form, alu)) { s.Written = true; s.Last = alu is AluOp.And or AluOp.Or or AluOp.Xor or AluOp.Test ? LastWriter.Logic : LastWriter.Arith; }
        }
        var last = OpForms.Of(ref ops[covered - 1]).Form;
        if (!IsClosing(last))
        {
            Capture(a, s);
            if (covered < ops.Length) ExitAt(a, s, covered, false);
            else
            {
                // The block ends without a branch (page end, size limit): on to the next instruction.
                a.mov(rax, __qword_ptr[rdi + 8 * X86Cpu.BlockRipReg]);
                a.lea(rax, __[rax + b.EndOff]);
                MaskRip(a, s.IpSize);
                ExitToRip(a, s, b.EndOff, s.IpSize);
            }
        }
        a.Label(ref s.EntryExit);
        a.mov(rax, __qword_ptr[rdi + 8 * X86Cpu.BlockRipReg]);
        a.mov(__qword_ptr[rdi + 8 * X86Cpu.JitRipSlot], rax);
        a.Label(ref s.Leave);
        a.mov(rax, Result(s.Id, Translation.Boundary, Translation.DetailMask, false));
        a.ret();
        var code = _linker.Link(a.Instructions);
        var stubs = new int[s.SlotCount];
        var targets = new ulong[s.SlotCount];
        for (int i = 0; i < s.SlotCount; i++)
        {
            stubs[i] = _linker.OffsetOf(s.StubLabels[i]);
            targets[i] = s.SlotTargets[i];
        }
        if (_linker.OffsetOf(s.SlotLabels[0]) != 8) throw new InvalidOperationException("translated code header misplaced");
        output = new Output(code, covered, needsIn, instrs, stubs, targets);
        return true;
    }

    private static long Result(int id, int index, int detail, bool miss)
        => ((long)id << 32) | (miss ? Translation.MissBit : 0) | ((long)detail << Translation.DetailShift) | (long)index;

    /// <summary>Passes a self-looping block makes per entry at most (fits the iteration field of the return value).</summary>
    public const int LoopBudget = 256;

    private sealed class EmitState
    {
        public int Id, Count, Covered, IpSize;
        public ulong Key;
        public Op[] Ops = [];
        /// <summary>64-bit code: complete exits chain (direct slots within the page, the native jump cache beyond).</summary>
        public bool Chain;
        public Label Valid, Leave, EntryExit;
        public readonly Label[] SlotLabels = new Label[Translation.MaxSlots];
        public readonly Label[] StubLabels = new Label[Translation.MaxSlots];
        public readonly ulong[] SlotTargets = new ulong[Translation.MaxSlots];
        public int SlotCount;
        public bool Written;
        /// <summary>The host flags hold the guest's (loaded at entry or written since): memory probes must keep them.</summary>
        public bool FlagsLive;
        public bool Loops;
        public Label Body;
        /// <summary>
        /// How the last flag writer's host flags differ from what the interpreter leaves: AND/OR/XOR/TEST and shifts
        /// leave AF undefined (the interpreter: 0); shifts by more than one leave OF undefined (the interpreter: SHL
        /// MSB(result) XOR CF as for one, SHR and SAR 0).
        /// </summary>
        public LastWriter Last;
    }

    private enum LastWriter { Arith, Logic, Shl, Shr1, ShrOrSar }

    // ---------------------------------------------------------------- what is supported

    private static bool Supported(ref Op op, OpForm form, AluOp alu, bool long64)
    {
        switch (form)
        {
            case OpForm.ImulRR:
                return op.Size is 2 or 4 or 8 && (op.Cc == 0 || op.Size != 8 || (long)op.Imm == (int)(long)op.Imm);
            case OpForm.ImulRM:
                return MemoryOk(ref op) && op.Size is 2 or 4 or 8 && (op.Cc == 0 || op.Size != 8 || (long)op.Imm == (int)(long)op.Imm);
            case OpForm.ShiftR:
                // At 1 and 2 bytes a shift by an immediate of the operand's width or more stays with the interpreter
                // (the host leaves CF undefined then); by CL the emitted code checks the count.
                return op.Cc is 0 or 1 or 4 or 5 or 6 or 7 && (op.Reg < 16 || (op.Size == 1 && op.Reg is >= 20 and < 24))
                    && (op.Size is 4 or 8 || (op.Size is 1 or 2 && (op.Size2 != 0 || op.Cc is 0 or 1 || (op.Imm & 31) < (ulong)op.Size * 8)));
            case OpForm.BinMR:
            case OpForm.UnM:
                return RmwOk(ref op, form, alu) && op.Size is 1 or 2 or 4 or 8;
            case OpForm.BinMI:
                return RmwOk(ref op, form, alu) && (op.Size is 1 or 2 or 4 || (op.Size == 8 && (long)op.Imm == (int)(long)op.Imm));
            case OpForm.PushR:
            case OpForm.PopR:
                return long64 && op.Size == 8 && op.Reg < 16;
            case OpForm.MulDivR:
                return op.Cc == 2 && op.Size is 4 or 8 && op.Reg < 16;
            case OpForm.MulDivM:
                return op.Cc == 2 && op.Size is 4 or 8 && MemoryOk(ref op);
            case OpForm.SetccM:
                return op.Cc < 16 && MemoryOk(ref op);
            case OpForm.BitTestR:
                return op.Size is 2 or 4 or 8 && op.Reg < 16 && (op.Size2 != 0 || op.Rm < 16);
            case OpForm.BitTestM:
                // A locked BTS/BTR/BTC is the host's on an aligned hit at 4 or 8 bytes, as the interpreter's atomic path.
                return op.Size is 2 or 4 or 8 && (op.Size2 != 0 || op.Rm < 16)
                    && (op.Flags & OpFlags.Mem) != 0 && op.Base != X86Cpu.WideDispReg && op.Index != X86Cpu.WideDispReg
                    && ((op.Flags & OpFlags.Lock) == 0 || (op.Cc != 0 && op.Size >= 4));
            case OpForm.Bswap:
                return op.Size is 4 or 8 && op.Reg < 16;
            case OpForm.Cbw:
            case OpForm.Cwd:
                return op.Size is 2 or 4 or 8;
            case OpForm.CmpxchgM:
                return op.Size is 1 or 2 or 4 or 8 && op.Reg < 16 && AtomicOk(ref op);
            case OpForm.XaddM:
                return op.Size is 1 or 2 or 4 or 8 && op.Reg < 16 && AtomicOk(ref op) && ((op.Flags & OpFlags.Lock) == 0 || op.Size >= 4);
            case OpForm.CallM:
            case OpForm.JmpM:
                return long64 && op.Size == 8 && MemoryOk(ref op);
            case OpForm.Leave:
            case OpForm.PushF:
                return long64 && op.Size == 8;
            case OpForm.PushI:
                return long64 && op.Size == 8 && (long)op.Imm == (int)(long)op.Imm;
            case OpForm.CallRel:
                return long64 && op.Size == 8 && BranchFits(8, op.Imm);
            case OpForm.Ret:
                return long64 && op.Size == 8;
            case OpForm.JmpR:
            case OpForm.CallR:
                return long64 && op.Size == 8 && op.Reg < 16;
            case OpForm.BinRR:
            case OpForm.UnR:
            case OpForm.MovRR:
                return op.Size is 1 or 2 or 4 or 8;
            case OpForm.BinRI:
                return op.Size is 1 or 2 or 4 || (op.Size == 8 && (long)op.Imm == (int)(long)op.Imm);
            case OpForm.MovRI:
                return op.Size is 1 or 2 or 4 or 8;
            case OpForm.MovxRR:
                return op.Size is 2 or 4 or 8 && op.Size2 is 1 or 2 or 4 && op.Size2 < op.Size;
            case OpForm.Lea:
                return op.Size is 2 or 4 or 8 && op.Base != X86Cpu.WideDispReg && op.Index != X86Cpu.WideDispReg;
            case OpForm.Nop:
                return true;
            case OpForm.ShiftImm:
                return op.Size is 4 or 8 && op.Cc is 4 or 5 or 6 or 7 && op.Imm is > 0 and < 64;
            case OpForm.MovRM:
            case OpForm.MovMR:
            case OpForm.BinRM:
                return MemoryOk(ref op) && op.Size is 1 or 2 or 4 or 8;
            case OpForm.MovMI:
                return MemoryOk(ref op) && (op.Size is 1 or 2 or 4 || (op.Size == 8 && (long)op.Imm == (int)(long)op.Imm));
            case OpForm.SetccR:
                return op.Cc < 16;
            case OpForm.CmovRR:
                return op.Cc < 16 && op.Size is 2 or 4 or 8;
            case OpForm.CmovRM:
                return op.Cc < 16 && op.Size is 2 or 4 or 8 && op.Reg < 16 && MemoryOk(ref op);
            case OpForm.MovxRM:
                return MemoryOk(ref op) && op.Size is 2 or 4 or 8 && op.Size2 is 1 or 2 or 4 && op.Size2 < op.Size;
            case OpForm.Jcc:
            case OpForm.JmpRel:
                return BranchFits(op.Size, op.Imm);
            case OpForm.FusedRR:
            case OpForm.FusedRI:
                return op.Size2 is 4 or 8 && BranchFits(op.Size, op.Imm);
            default:
                return false;
        }
    }

    private static bool AtomicOk(ref Op op)
        => (op.Flags & OpFlags.Mem) != 0 && op.Base != X86Cpu.WideDispReg && op.Index != X86Cpu.WideDispReg;

    private static bool MemoryOk(ref Op op)
        => (op.Flags & OpFlags.Mem) != 0 && (op.Flags & OpFlags.Lock) == 0 && op.Base != X86Cpu.WideDispReg && op.Index != X86Cpu.WideDispReg;

    /// <summary>A read-modify-write destination: LOCK is fine (a host LOCK instruction on an aligned TLB hit), except on CMP/TEST.</summary>
    private static bool RmwOk(ref Op op, OpForm form, AluOp alu)
        => (op.Flags & OpFlags.Mem) != 0 && op.Base != X86Cpu.WideDispReg && op.Index != X86Cpu.WideDispReg
           && ((op.Flags & OpFlags.Lock) == 0 || (form == OpForm.UnM || Stores(alu)));

    private static bool IsMemory(OpForm form)
        => form is OpForm.MovRM or OpForm.MovMR or OpForm.MovMI or OpForm.MovxRM or OpForm.BinRM or OpForm.BinMR or OpForm.BinMI
            or OpForm.UnM or OpForm.ImulRM or OpForm.PushR or OpForm.PushI or OpForm.PopR or OpForm.CallRel or OpForm.Ret or OpForm.CallR
            or OpForm.MulDivR // not memory, but it has a miss exit (a divide error) as they do
            or OpForm.ShiftR // a narrow shift by CL leaves for the interpreter when the count is the width or more
            or OpForm.CmovRM or OpForm.MulDivM or OpForm.SetccM or OpForm.BitTestM or OpForm.CmpxchgM or OpForm.XaddM or OpForm.CallM or OpForm.JmpM
            or OpForm.Leave or OpForm.PushF;

    /// <summary>Forms that end the block (they set the next RIP).</summary>
    private static bool IsClosing(OpForm form)
        => form is OpForm.Jcc or OpForm.JmpRel or OpForm.FusedRR or OpForm.FusedRI or OpForm.CallRel or OpForm.Ret or OpForm.JmpR or OpForm.CallR
            or OpForm.CallM or OpForm.JmpM;

    /// <summary>A block-relative target must fit LEA's 32-bit displacement (narrower IPs are masked afterwards anyway).</summary>
    private static bool BranchFits(int size, ulong rel) => size is 2 or 4 || (size == 8 && (long)rel == (int)(long)rel);

    // A shift by CL reads the flags: a zero count leaves them as they were.
    private static bool ReadsFlags(OpForm form, AluOp alu)
        => form is OpForm.Jcc or OpForm.SetccR or OpForm.SetccM or OpForm.CmovRR or OpForm.CmovRM or OpForm.ShiftR or OpForm.BitTestR or OpForm.BitTestM or OpForm.PushF
           || (form is OpForm.BinRR or OpForm.BinRI or OpForm.BinRM or OpForm.BinMR or OpForm.BinMI && alu is AluOp.Adc or AluOp.Sbb)
           || (form is OpForm.UnR or OpForm.UnM && alu is AluOp.Inc or AluOp.Dec);

    private static bool WritesFlags(OpForm form, AluOp alu)
        => form is OpForm.BinRR or OpForm.BinRI or OpForm.BinRM or OpForm.BinMR or OpForm.BinMI or OpForm.FusedRR or OpForm.FusedRI
               or OpForm.ShiftImm or OpForm.ShiftR or OpForm.ImulRR or OpForm.ImulRM or OpForm.CmpxchgM or OpForm.XaddM
           || (form is OpForm.UnR or OpForm.UnM && alu != AluOp.Not);

    // ---------------------------------------------------------------- operands

    /// <summary>A guest register's slot: R[r], or byte 1 of R[r - 20] for AH, CH, DH, BH.</summary>
    private static MemoryOperand Slot(int r) => new(Register.RDI, r >= 20 ? 8 * (r - 20) + 1 : 8 * r);

    private static MemoryOperand SlotPlus(int r, int extra) => new(Register.RDI, 8 * r + extra);

    private static Register Rax(int size) => size switch { 1 => Register.AL, 2 => Register.AX, 4 => Register.EAX, _ => Register.RAX };
    private static Register Rcx(int size) => size switch { 1 => Register.CL, 2 => Register.CX, 4 => Register.ECX, _ => Register.RCX };

    private static Code Load(int size) => size switch { 1 => Code.Mov_r8_rm8, 2 => Code.Mov_r16_rm16, 4 => Code.Mov_r32_rm32, _ => Code.Mov_r64_rm64 };
    private static Code Store(int size) => size switch { 1 => Code.Mov_rm8_r8, 2 => Code.Mov_rm16_r16, 4 => Code.Mov_rm32_r32, _ => Code.Mov_rm64_r64 };

    private static void Ins(Assembler a, Instruction i) => a.AddInstruction(i);

    /// <summary>Immediate as the encoder takes it for an operand of <paramref name="size"/> bytes.</summary>
    private static int Imm(ulong v, int size) => size switch { 1 => (byte)v, 2 => (ushort)v, _ => (int)v };

    private static bool Stores(AluOp alu) => alu is not (AluOp.Cmp or AluOp.Test);

    // ---------------------------------------------------------------- instructions

    private static void EmitBinRR(Assembler a, ref Op op, AluOp alu)
    {
        int s = op.Size;
        Ins(a, Instruction.Create(Load(s), Rcx(s), Slot(op.Rm)));
        if (s == 4)
        {
            // 32-bit results zero-extend into the 64-bit register: compute in EAX, store all 8 bytes.
            Ins(a, Instruction.Create(Load(4), Register.EAX, Slot(op.Reg)));
            Ins(a, Instruction.Create(HostCodes.RegForm(alu, 4), Register.EAX, Register.ECX));
            if (Stores(alu)) Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX));
        }
        else Ins(a, Instruction.Create(HostCodes.RegForm(alu, s), Slot(op.Reg), Rcx(s)));
    }

    private static void EmitBinRI(Assembler a, ref Op op, AluOp alu)
    {
        int s = op.Size;
        if (s == 4)
        {
            Ins(a, Instruction.Create(Load(4), Register.EAX, Slot(op.Reg)));
            Ins(a, Instruction.Create(HostCodes.ImmForm(alu, 4), Register.EAX, Imm(op.Imm, 4)));
            if (Stores(alu)) Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX));
        }
        else Ins(a, Instruction.Create(HostCodes.ImmForm(alu, s), Slot(op.Reg), Imm(op.Imm, s)));
    }

    private static void EmitUnR(Assembler a, ref Op op, AluOp alu)
    {
        int s = op.Size;
        if (s == 4)
        {
            Ins(a, Instruction.Create(Load(4), Register.EAX, Slot(op.Reg)));
            Ins(a, Instruction.Create(HostCodes.UnaryForm(alu, 4), Register.EAX));
            Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX));
        }
        else Ins(a, Instruction.Create(HostCodes.UnaryForm(alu, s), Slot(op.Reg)));
    }

    private static void EmitMovRR(Assembler a, ref Op op)
    {
        int s = op.Size;
        Ins(a, Instruction.Create(Load(s), Rax(s), Slot(op.Rm)));
        Ins(a, Instruction.Create(Store(s == 4 ? 8 : s), Slot(op.Reg), s == 4 ? Register.RAX : Rax(s)));
    }

    private static void EmitMovRI(Assembler a, ref Op op)
    {
        switch (op.Size)
        {
            case 1: Ins(a, Instruction.Create(Code.Mov_rm8_imm8, Slot(op.Reg), (byte)op.Imm)); break;
            case 2: Ins(a, Instruction.Create(Code.Mov_rm16_imm16, Slot(op.Reg), (ushort)op.Imm)); break;
            case 4:
                Ins(a, Instruction.Create(Code.Mov_rm32_imm32, Slot(op.Reg), (int)(uint)op.Imm));
                Ins(a, Instruction.Create(Code.Mov_rm32_imm32, SlotPlus(op.Reg, 4), 0));
                break;
            default:
                if ((long)op.Imm == (int)(long)op.Imm)
                    Ins(a, Instruction.Create(Code.Mov_rm64_imm32, Slot(op.Reg), (int)(long)op.Imm));
                else
                {
                    Ins(a, Instruction.Create(Code.Mov_r64_imm64, Register.RAX, op.Imm));
                    Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX));
                }
                break;
        }
    }

    private static void EmitMovx(Assembler a, ref Op op)
    {
        bool sign = op.Cc != 0;
        var src = Slot(op.Rm);
        // The extended value in RAX (64-bit destination) or EAX (narrower: upper half zero, as a 32-bit write leaves it).
        Code c = (op.Size2, sign, op.Size == 8) switch
        {
            (1, false, _) => Code.Movzx_r32_rm8,
            (2, false, _) => Code.Movzx_r32_rm16,
            (1, true, true) => Code.Movsx_r64_rm8,
            (2, true, true) => Code.Movsx_r64_rm16,
            (1, true, false) => Code.Movsx_r32_rm8,
            (2, true, false) => Code.Movsx_r32_rm16,
            (4, true, true) => Code.Movsxd_r64_rm32,
            _ => Code.Mov_r32_rm32,
        };
        bool wide = c is Code.Movsx_r64_rm8 or Code.Movsx_r64_rm16 or Code.Movsxd_r64_rm32;
        Ins(a, Instruction.Create(c, wide ? Register.RAX : Register.EAX, src));
        if (op.Size == 2) Ins(a, Instruction.Create(Store(2), Slot(op.Reg), Register.AX));
        else Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX));
    }

    private static void EmitLea(Assembler a, ref Op op)
    {
        // RAX = disp + R[base] + (R[index] << scale), masked to the address size; then stored at the operand size.
        Ins(a, Instruction.Create(Load(8), Register.RAX, Slot(op.Base)));
        Ins(a, Instruction.Create(Load(8), Register.RCX, Slot(op.Index)));
        Ins(a, Instruction.Create(Code.Lea_r64_m, Register.RAX, new MemoryOperand(Register.RAX, Register.RCX, 1 << op.Scale, op.Disp, 1)));
        if (op.AddrShift == 32) Ins(a, Instruction.Create(Code.Mov_r32_rm32, Register.EAX, Register.EAX));
        else if (op.AddrShift == 48) Ins(a, Instruction.Create(Code.Movzx_r32_rm16, Register.EAX, Register.AX));
        switch (op.Size)
        {
            case 2: Ins(a, Instruction.Create(Store(2), Slot(op.Reg), Register.AX)); break;
            case 4:
                Ins(a, Instruction.Create(Code.Mov_r32_rm32, Register.EAX, Register.EAX));
                Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX));
                break;
            default: Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX)); break;
        }
    }

    /// <summary>
    /// A memory operand: linear address, inline probe of the read or write TLB exactly as the interpreter's fast
    /// path does it (tag = page | user bit; the access must not cross the page), then the access at host address =
    /// linear + addend. A miss (or a crossing, an unmapped, MMIO or code page...) leaves before the op has done anything:
    /// the interpreter runs it, with its slow path, faults included. Host flags live across the probe are kept in R9.
    /// Write-TLB entries exist only for plain RAM without cached code while dirty logging is off, so stores through
    /// them need no SMC or dirty-log check (the interpreter's fast path relies on the same).
    /// </summary>
    private static void EmitMemory(Assembler a, ref Op op, OpForm form, AluOp alu, EmitState s, int index)
    {
        bool write = form is OpForm.MovMR or OpForm.MovMI or OpForm.UnM || (form is OpForm.BinMR or OpForm.BinMI && Stores(alu));
        bool locked = (op.Flags & OpFlags.Lock) != 0;
        int size = form == OpForm.MovxRM ? op.Size2 : op.Size;
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        SaveFlags(a, s);
        EffectiveAddress(a, ref op);
        Probe(a, write, size, locked, miss);
        var host = new MemoryOperand(Register.RAX);
        if (form is OpForm.BinMR or OpForm.BinMI or OpForm.UnM)
        {
            // RestoreFlags goes through EAX.
            a.mov(rdx, rax);
            host = new MemoryOperand(Register.RDX);
        }
        bool flagsFromOp = false;
        switch (form)
        {
            case OpForm.MovRM:
                Ins(a, Instruction.Create(Load(size), Rcx(size), host));
                Ins(a, Instruction.Create(Store(size == 4 ? 8 : size), Slot(op.Reg), size == 4 ? Register.RCX : Rcx(size)));
                break;
            case OpForm.MovxRM:
            {
                bool sign = op.Cc != 0, wide = op.Size == 8 && sign;
                Code c = (op.Size2, sign) switch
                {
                    (1, false) => Code.Movzx_r32_rm8,
                    (2, false) => Code.Movzx_r32_rm16,
                    (1, true) => wide ? Code.Movsx_r64_rm8 : Code.Movsx_r32_rm8,
                    (2, true) => wide ? Code.Movsx_r64_rm16 : Code.Movsx_r32_rm16,
                    (4, true) => wide ? Code.Movsxd_r64_rm32 : Code.Mov_r32_rm32,
                    _ => Code.Mov_r32_rm32,
                };
                Ins(a, Instruction.Create(c, wide ? Register.RCX : Register.ECX, host));
                if (op.Size == 2) Ins(a, Instruction.Create(Store(2), Slot(op.Reg), Register.CX));
                else Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RCX));
                break;
            }
            case OpForm.MovMR:
                Ins(a, Instruction.Create(Load(size), Rcx(size), Slot(op.Reg)));
                Ins(a, Instruction.Create(Store(size), host, Rcx(size)));
                break;
            case OpForm.MovMI:
                StoreImm(a, host, size, op.Imm);
                break;
            case OpForm.BinRM:
                // The loaded value in RCX; the ALU op sets the guest's flags itself (ADC/SBB read CF: restored first).
                Ins(a, Instruction.Create(Load(size), Rcx(size), host));
                if (alu is AluOp.Adc or AluOp.Sbb) RestoreFlags(a, s);
                if (size == 4)
                {
                    Ins(a, Instruction.Create(Load(4), Register.EAX, Slot(op.Reg)));
                    Ins(a, Instruction.Create(HostCodes.RegForm(alu, 4), Register.EAX, Register.ECX));
                    if (Stores(alu)) Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX));
                }
                else Ins(a, Instruction.Create(HostCodes.RegForm(alu, size), Slot(op.Reg), Rcx(size)));
                flagsFromOp = true;
                break;
            case OpForm.BinMR:
            {
                // The guest's own instruction on the host address (with LOCK when the guest has it).
                Ins(a, Instruction.Create(Load(size), Rcx(size), Slot(op.Reg)));
                if (alu is AluOp.Adc or AluOp.Sbb) RestoreFlags(a, s);
                var i = Instruction.Create(HostCodes.RegForm(alu, size), host, Rcx(size));
                i.HasLockPrefix = locked;
                Ins(a, i);
                flagsFromOp = true;
                break;
            }
            case OpForm.BinMI:
            {
                if (alu is AluOp.Adc or AluOp.Sbb) RestoreFlags(a, s);
                var i = Instruction.Create(HostCodes.ImmForm(alu, size), host, Imm(op.Imm, size));
                i.HasLockPrefix = locked;
                Ins(a, i);
                flagsFromOp = true;
                break;
            }
            case OpForm.UnM:
            {
                // INC/DEC keep CF, NOT keeps everything: the guest's flags go back first.
                RestoreFlags(a, s);
                var i = Instruction.Create(HostCodes.UnaryForm(alu, size), host);
                i.HasLockPrefix = locked;
                Ins(a, i);
                flagsFromOp = true; // NOT leaves the flags just restored
                break;
            }
            case OpForm.ImulRM:
                a.mov(rcx, rax);
                EmitImul(a, ref op, new MemoryOperand(Register.RCX));
                flagsFromOp = true;
                break;
            case OpForm.CmovRM:
            {
                // The guest's flags back for the condition; CMOV always writes its destination (zero-extended at 4).
                a.mov(rdx, rax);
                RestoreFlags(a, s);
                Ins(a, Instruction.Create(Load(size), Rax(size), Slot(op.Reg)));
                Ins(a, Instruction.Create(HostCodes.CmovForm(op.Cc, size), Rax(size), new MemoryOperand(Register.RDX)));
                Ins(a, Instruction.Create(Store(size == 4 ? 8 : size), Slot(op.Reg), size == 4 ? Register.RAX : Rax(size)));
                flagsFromOp = true;
                break;
            }
        }
        if (!flagsFromOp) RestoreFlags(a, s);
        MissExit(a, s, index, miss, done); // one label per instruction
    }

    private static void StoreImm(Assembler a, MemoryOperand m, int size, ulong imm)
    {
        switch (size)
        {
            case 1: Ins(a, Instruction.Create(Code.Mov_rm8_imm8, m, (byte)imm)); break;
            case 2: Ins(a, Instruction.Create(Code.Mov_rm16_imm16, m, (ushort)imm)); break;
            case 4: Ins(a, Instruction.Create(Code.Mov_rm32_imm32, m, (int)(uint)imm)); break;
            default: Ins(a, Instruction.Create(Code.Mov_rm64_imm32, m, (int)(long)imm)); break;
        }
    }

    /// <summary>
    /// The end of an op with a fast path: the fast path jumps over; the miss path puts the guest's flags back (saved
    /// in R9 before the probe) and leaves before the op for the interpreter. <paramref name="flagsSavedAlways"/>: R9
    /// was written whether or not the flags were live.
    /// </summary>
    private static void MissExit(Assembler a, EmitState s, int index, Label miss, Label done, bool flagsSavedAlways = false)
    {
        a.jmp(done);
        a.Label(ref miss);
        if (flagsSavedAlways) RestoreFlags(a);
        else RestoreFlags(a, s);
        Capture(a, s);
        ExitAt(a, s, index, true);
        a.Label(ref done);
        a.nop(); // one label per instruction
    }

    /// <summary>Host flags that are the guest's go to R9 (<c>lahf; seto al</c>) before the probe's compares.</summary>
    private static void SaveFlags(Assembler a, EmitState s)
    {
        if (!s.FlagsLive) return;
        a.lahf();
        a.seto(al);
        a.mov(r9d, eax);
    }

    private static void RestoreFlags(Assembler a, EmitState s)
    {
        if (s.FlagsLive) RestoreFlags(a);
    }

    /// <summary>RAX := the op's linear address (offset masked to the address size, plus the segment base, masked to the linear size).</summary>
    private static void EffectiveAddress(Assembler a, ref Op op)
    {
        Ins(a, Instruction.Create(Load(8), Register.RAX, Slot(op.Base)));
        Ins(a, Instruction.Create(Load(8), Register.RCX, Slot(op.Index)));
        Ins(a, Instruction.Create(Code.Lea_r64_m, Register.RAX, new MemoryOperand(Register.RAX, Register.RCX, 1 << op.Scale, op.Disp, 1)));
        if (op.AddrShift == 32) a.mov(eax, eax);
        else if (op.AddrShift == 48) a.movzx(eax, ax);
        a.add(rax, __qword_ptr[rdi + 8 * (X86Cpu.SegBaseSlot + op.Seg)]);
        a.and(rax, __qword_ptr[rdi + 8 * X86Cpu.JitLinMaskSlot]);
    }

    /// <summary>RAX := linear address of RSP + <paramref name="delta"/> (64-bit mode: the stack pointer is not masked).</summary>
    private static void StackAddress(Assembler a, int delta)
    {
        a.mov(rax, __qword_ptr[rdi + 8 * 4]);
        if (delta != 0) a.lea(rax, __[rax + delta]);
        a.add(rax, __qword_ptr[rdi + 8 * (X86Cpu.SegBaseSlot + X86Cpu.SS)]);
        a.and(rax, __qword_ptr[rdi + 8 * X86Cpu.JitLinMaskSlot]);
    }

    /// <summary>
    /// RAX (linear) := host address when the read or write TLB maps the page for this privilege and the access stays
    /// inside it (locked ones: naturally aligned, as the interpreter's atomic path wants); else to <paramref name="miss"/>.
    /// Clobbers RCX, RDX and the flags.
    /// </summary>
    private static void Probe(Assembler a, bool write, int size, bool aligned, Label miss)
    {
        // RCX = &tlb[set + ((la >> 12) & 511)], 16-byte entries {tag, addend}.
        a.mov(rcx, rax);
        a.shr(rcx, 12);
        a.and(ecx, X86Cpu.TlbSize - 1);
        a.shl(ecx, 4);
        if (write) a.add(ecx, X86Cpu.TlbSize * 16);
        a.add(rcx, __qword_ptr[rdi + 8 * X86Cpu.JitTlbSlot]);
        a.mov(rdx, rax);
        a.and(rdx, -4096);
        a.or(rdx, __qword_ptr[rdi + 8 * X86Cpu.JitUserBitSlot]);
        a.cmp(rdx, __qword_ptr[rcx]);
        a.jne(miss);
        if (aligned && size > 1)
        {
            a.test(eax, size - 1);
            a.jne(miss);
        }
        else if (size > 1)
        {
            a.mov(edx, eax);
            a.and(edx, 0xFFF);
            a.cmp(edx, 0x1000 - size);
            a.ja(miss);
        }
        a.add(rax, __qword_ptr[rcx + 8]);
    }

    /// <summary>
    /// IMUL dest, src (or dest, src, imm) at 2, 4 or 8 bytes, then the flags as the interpreter leaves them: CF = OF =
    /// the host's overflow, SF/ZF/PF from the truncated result, AF 0 (the host leaves those four undefined).
    /// </summary>
    private static void EmitImul(Assembler a, ref Op op, MemoryOperand src)
    {
        int sz = op.Size;
        var r = Rax(sz);
        if (op.Cc != 0)
        {
            Code c = sz switch { 2 => Code.Imul_r16_rm16_imm16, 4 => Code.Imul_r32_rm32_imm32, _ => Code.Imul_r64_rm64_imm32 };
            Ins(a, Instruction.Create(c, r, src, Imm(op.Imm, sz)));
        }
        else
        {
            Ins(a, Instruction.Create(Load(sz), r, Slot(op.Reg)));
            Code c = sz switch { 2 => Code.Imul_r16_rm16, 4 => Code.Imul_r32_rm32, _ => Code.Imul_r64_rm64 };
            Ins(a, Instruction.Create(c, r, src));
        }
        Ins(a, Instruction.Create(Store(sz == 4 ? 8 : sz), Slot(op.Reg), sz == 4 ? Register.RAX : r));
        a.seto(cl);
        Ins(a, Instruction.Create(HostCodes.RegForm(AluOp.Test, sz), r, r));
        a.lahf();
        a.and(ah, 0xEF);
        a.or(ah, cl);
        a.mov(al, cl);
        a.add(al, 0x7F);
        a.sahf();
    }

    /// <summary>
    /// ROL/ROR/SHL/SHR/SAR by CL (or by an immediate) at 1, 2, 4 or 8 bytes. A zero count (after masking) leaves the
    /// flags alone, as on the host; otherwise OF becomes what the interpreter computes for every count (the host
    /// defines it for a count of 1 only): SHL MSB(result) XOR CF, SHR the host's for 1 else 0, SAR 0, ROL MSB(result)
    /// XOR CF, ROR the XOR of the result's two top bits; and AF 0 after shifts (rotates keep it, as both tiers do).
    /// At 1 and 2 bytes a shift count of the operand's width or more leaves CF undefined on the host: that case goes
    /// to the interpreter (rotates are defined for every count). The flags before must be exact for the zero count.
    /// </summary>
    private static void EmitShiftR(Assembler a, ref Op op, EmitState s, int index)
    {
        MakeExact(a, s);
        int size = op.Size, top = size * 8 - 1;
        bool narrow = size < 4, rotate = op.Cc is 0 or 1;
        bool countCheck = narrow && !rotate && op.Size2 != 0;
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        if (countCheck)
        {
            SaveFlags(a, s);
            a.movzx(ecx, __byte_ptr[rdi + 8 * 1]);
            a.and(ecx, 31);
            a.cmp(ecx, size * 8);
            a.jae(miss);
            RestoreFlags(a, s);
        }
        if (op.Size2 != 0) a.mov(cl, __byte_ptr[rdi + 8 * 1]);
        else a.mov(ecx, (int)(op.Imm & 0xFF));
        Code c = (op.Cc, size) switch
        {
            (0, 1) => Code.Rol_rm8_CL, (1, 1) => Code.Ror_rm8_CL, (5, 1) => Code.Shr_rm8_CL, (7, 1) => Code.Sar_rm8_CL, (_, 1) => Code.Shl_rm8_CL,
            (0, 2) => Code.Rol_rm16_CL, (1, 2) => Code.Ror_rm16_CL, (5, 2) => Code.Shr_rm16_CL, (7, 2) => Code.Sar_rm16_CL, (_, 2) => Code.Shl_rm16_CL,
            (0, 8) => Code.Rol_rm64_CL, (1, 8) => Code.Ror_rm64_CL, (5, 8) => Code.Shr_rm64_CL, (7, 8) => Code.Sar_rm64_CL, (_, 8) => Code.Shl_rm64_CL,
            (0, _) => Code.Rol_rm32_CL, (1, _) => Code.Ror_rm32_CL, (5, _) => Code.Shr_rm32_CL, (7, _) => Code.Sar_rm32_CL, _ => Code.Shl_rm32_CL,
        };
        // The result in (part of) RAX; a 32-bit result is stored zero-extended, narrower ones into their bytes only.
        var reg = Rax(size);
        Ins(a, Instruction.Create(Load(size), reg, Slot(op.Reg)));
        Ins(a, Instruction.Create(c, reg, Register.CL));
        Ins(a, Instruction.Create(Store(size == 4 ? 8 : size), Slot(op.Reg), size == 4 ? Register.RAX : reg));
        var keep = a.CreateLabel();
        a.pushfq();
        a.pop(rdx);
        a.and(ecx, size == 8 ? 63 : 31);
        a.je(keep);
        if (rotate)
        {
            // OF from the result's top bits (bits above the operand are ignored by the final AND).
            a.mov(rcx, rax);
            a.shr(rcx, (byte)top);
            if (op.Cc == 0) a.xor(ecx, edx); // ROL: with CF (bit 0 of the flags)
            else
            {
                a.shr(rax, (byte)(top - 1));
                a.xor(ecx, eax);
            }
            a.and(ecx, 1);
            a.shl(ecx, 11);
            a.and(edx, ~(int)X86Cpu.OF);
            a.or(edx, ecx);
        }
        else
        {
            a.and(edx, ~(int)X86Cpu.AF);
            if (op.Cc is 4 or 6) ShlOverflow(a);
            else
            {
                a.cmp(ecx, 1);
                a.je(keep);
                a.and(edx, ~(int)X86Cpu.OF);
            }
        }
        a.Label(ref keep);
        a.push(rdx);
        a.popfq();
        if (countCheck) MissExit(a, s, index, miss, done);
    }

    /// <summary>EDX (flags): OF := SF XOR CF (the interpreter's SHL rule for every count).</summary>
    private static void ShlOverflow(Assembler a)
    {
        a.mov(eax, edx);
        a.shr(eax, 7);
        a.xor(eax, edx);
        a.and(eax, 1);
        a.shl(eax, 11);
        a.and(edx, ~(int)X86Cpu.OF);
        a.or(edx, eax);
    }

    /// <summary>Host flags := exactly the interpreter's, when the last writer left bits undefined (a flag-keeping op follows).</summary>
    private static void MakeExact(Assembler a, EmitState s)
    {
        if (!s.Written || s.Last == LastWriter.Arith) return;
        a.pushfq();
        a.pop(rdx);
        FixUndefined(a, s.Last);
        a.push(rdx);
        a.popfq();
        s.Last = LastWriter.Arith;
    }

    /// <summary>EDX (flags): the bits the host leaves undefined after <paramref name="last"/>, as the interpreter sets them.</summary>
    private static void FixUndefined(Assembler a, LastWriter last)
    {
        switch (last)
        {
            case LastWriter.Logic:
            case LastWriter.Shr1:
                a.and(edx, ~(int)X86Cpu.AF);
                break;
            case LastWriter.Shl:
                a.and(edx, ~(int)X86Cpu.AF);
                ShlOverflow(a);
                break;
            case LastWriter.ShrOrSar:
                a.and(edx, ~(int)(X86Cpu.AF | X86Cpu.OF));
                break;
        }
    }

    /// <summary>PUSH r64 / PUSH imm / POP r64 in 64-bit mode, through the write (push) or read (pop) TLB.</summary>
    private static void EmitStack(Assembler a, ref Op op, OpForm form, EmitState s, int index)
    {
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        SaveFlags(a, s);
        bool pop = form == OpForm.PopR;
        StackAddress(a, pop ? 0 : -8);
        Probe(a, !pop, 8, false, miss);
        if (pop)
        {
            a.mov(rcx, __qword_ptr[rax]);
            a.mov(rdx, __qword_ptr[rdi + 8 * 4]);
            a.lea(rdx, __[rdx + 8]);
            a.mov(__qword_ptr[rdi + 8 * 4], rdx);
            a.mov(__qword_ptr[rdi + 8 * op.Reg], rcx); // after RSP: POP RSP loads the popped value
        }
        else
        {
            // PUSH RSP stores the value before the decrement.
            if (form == OpForm.PushR)
            {
                a.mov(rcx, __qword_ptr[rdi + 8 * op.Reg]);
                a.mov(__qword_ptr[rax], rcx);
            }
            else StoreImm(a, new MemoryOperand(Register.RAX), 8, op.Imm);
            a.mov(rdx, __qword_ptr[rdi + 8 * 4]);
            a.lea(rdx, __[rdx - 8]);
            a.mov(__qword_ptr[rdi + 8 * 4], rdx);
        }
        RestoreFlags(a, s);
        MissExit(a, s, index, miss, done);
    }

    /// <summary>
    /// DIV r or DIV m at 4 or 8 bytes: RDX:RAX / divisor. A zero divisor or a quotient too wide (both exactly when RDX >= r) leaves
    /// before the op, for the interpreter to raise #DE; otherwise the host's DIV, which cannot fault then. The
    /// interpreter leaves the flags alone, so live guest flags are kept around it.
    /// </summary>
    private static void EmitDiv(Assembler a, ref Op op, EmitState s, int index)
    {
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        SaveFlags(a, s);
        bool memory = OpForms.Of(ref op).Form == OpForm.MulDivM;
        if (memory)
        {
            // The divisor through the read TLB (a miss leaves before the op, as any other).
            EffectiveAddress(a, ref op);
            Probe(a, false, op.Size, false, miss);
        }
        if (op.Size == 8)
        {
            if (memory) a.mov(rcx, __qword_ptr[rax]);
            else a.mov(rcx, __qword_ptr[rdi + 8 * op.Reg]);
            a.mov(rdx, __qword_ptr[rdi + 8 * 2]);
            a.cmp(rdx, rcx);
            a.jae(miss);
            a.mov(rax, __qword_ptr[rdi]);
            a.div(rcx);
        }
        else
        {
            if (memory) a.mov(ecx, __dword_ptr[rax]);
            else a.mov(ecx, __dword_ptr[rdi + 8 * op.Reg]);
            a.mov(edx, __dword_ptr[rdi + 8 * 2]);
            a.cmp(edx, ecx);
            a.jae(miss);
            a.mov(eax, __dword_ptr[rdi]);
            a.div(ecx); // EAX and EDX written zero-extended, as the interpreter stores them
        }
        a.mov(__qword_ptr[rdi], rax);
        a.mov(__qword_ptr[rdi + 8 * 2], rdx);
        RestoreFlags(a, s);
        MissExit(a, s, index, miss, done);
    }

    /// <summary>
    /// CALL rel / RET [imm] / JMP r / CALL r / JMP m / CALL m in 64-bit mode: the block's last op; the next RIP goes to the exit slot.
    /// A non-canonical target or a TLB miss leaves before the op, for the interpreter to fault or take the slow path.
    /// </summary>
    private static void EmitTransfer(Assembler a, ref Op op, OpForm form, EmitState s, int index)
    {
        var miss = a.CreateLabel();
        SaveFlags(a, s);
        if (form is OpForm.JmpR or OpForm.CallR)
        {
            a.mov(r10, __qword_ptr[rdi + 8 * op.Reg]);
            Canonical(a, r10, miss);
        }
        else if (form is OpForm.JmpM or OpForm.CallM)
        {
            // The pointer through the read TLB; the push below has its own probe (either miss leaves before the op).
            EffectiveAddress(a, ref op);
            Probe(a, false, 8, false, miss);
            a.mov(r10, __qword_ptr[rax]);
            Canonical(a, r10, miss);
        }
        if (form == OpForm.Ret)
        {
            StackAddress(a, 0);
            Probe(a, false, 8, false, miss);
            a.mov(r10, __qword_ptr[rax]);
            Canonical(a, r10, miss);
            a.mov(rdx, __qword_ptr[rdi + 8 * 4]);
            a.lea(rdx, __[rdx + 8 + (int)(op.Imm & 0xFFFF)]);
            a.mov(__qword_ptr[rdi + 8 * 4], rdx);
        }
        else if (form is OpForm.CallRel or OpForm.CallR or OpForm.CallM)
        {
            StackAddress(a, -8);
            Probe(a, true, 8, false, miss);
            a.mov(rcx, __qword_ptr[rdi + 8 * X86Cpu.BlockRipReg]);
            a.lea(rcx, __[rcx + (int)op.NextOff]);
            a.mov(__qword_ptr[rax], rcx);
            a.mov(rdx, __qword_ptr[rdi + 8 * 4]);
            a.lea(rdx, __[rdx - 8]);
            a.mov(__qword_ptr[rdi + 8 * 4], rdx);
            if (form == OpForm.CallRel)
            {
                a.mov(r10, __qword_ptr[rdi + 8 * X86Cpu.BlockRipReg]);
                a.lea(r10, __[r10 + (int)op.Imm]);
            }
        }
        RestoreFlags(a, s);
        Capture(a, s);
        a.mov(rax, r10);
        ExitToRip(a, s, form == OpForm.CallRel ? (long)op.Imm : null, 8);
        a.Label(ref miss);
        RestoreFlags(a, s);
        Capture(a, s);
        ExitAt(a, s, index, true);
    }

    /// <summary>To <paramref name="bad"/> unless <paramref name="r"/> is canonical (48-bit), with RDX as scratch.</summary>
    private static void Canonical(Assembler a, AssemblerRegister64 r, Label bad)
    {
        a.mov(rdx, r);
        a.shl(rdx, 16);
        a.sar(rdx, 16);
        a.cmp(rdx, r);
        a.jne(bad);
    }

    /// <summary>Host flags := what <c>lahf; seto al</c> saved in R9 (OF through ADD AL, 0x7F; the rest through SAHF).</summary>
    private static void RestoreFlags(Assembler a)
    {
        a.mov(eax, r9d);
        a.add(al, 0x7F);
        a.sahf();
    }

    private static void EmitShift(Assembler a, ref Op op)
    {
        Code c = (op.Cc, op.Size) switch
        {
            (5, 8) => Code.Shr_rm64_imm8,
            (7, 8) => Code.Sar_rm64_imm8,
            (_, 8) => Code.Shl_rm64_imm8,
            (5, _) => Code.Shr_rm32_imm8,
            (7, _) => Code.Sar_rm32_imm8,
            _ => Code.Shl_rm32_imm8,
        };
        if (op.Size == 8) Ins(a, Instruction.Create(c, Slot(op.Reg), (int)op.Imm));
        else
        {
            Ins(a, Instruction.Create(Load(4), Register.EAX, Slot(op.Reg)));
            Ins(a, Instruction.Create(c, Register.EAX, (int)op.Imm));
            Ins(a, Instruction.Create(Store(8), Slot(op.Reg), Register.RAX));
        }
    }

    private static void EmitFusedCompare(Assembler a, ref Op op, OpForm form, AluOp alu)
    {
        int s = op.Size2;
        if (form == OpForm.FusedRR)
        {
            Ins(a, Instruction.Create(Load(s), Rcx(s), Slot(op.Rm)));
            Ins(a, Instruction.Create(HostCodes.RegForm(alu, s), Slot(op.Reg), Rcx(s)));
        }
        else Ins(a, Instruction.Create(HostCodes.ImmForm(alu, s), Slot(op.Reg), op.Disp));
    }

    // ---------------------------------------------------------------- flags and exits

    /// <summary>Host flags := the guest's (RFLAGS bits in R[JitFlagsSlot]): OF through ADD AL, 0x7F on 0 or 1, the rest through SAHF.</summary>
    private static void LoadFlags(Assembler a)
    {
        a.mov(rdx, __qword_ptr[rdi + 8 * X86Cpu.JitFlagsSlot]);
        a.mov(eax, edx);
        a.shr(eax, 11);
        a.and(eax, 1);
        a.add(al, 0x7F);
        a.mov(ah, dl);
        a.sahf();
    }

    /// <summary>RDX := host RFLAGS, before anything can clobber them (MOV, LEA and Jcc after this leave them intact).</summary>
    private static void Capture(Assembler a, EmitState s)
    {
        if (!s.Written) return;
        a.pushfq();
        a.pop(rdx);
    }

    /// <summary>The flags captured in RDX go to R[JitFlagsSlot], the bits the host leaves undefined made the interpreter's. Clobbers RAX.</summary>
    private static void StoreFlags(Assembler a, EmitState s)
    {
        if (!s.Written) return;
        ulong mask = s.Last switch
        {
            LastWriter.Arith => X86Cpu.ArithMask,
            LastWriter.Logic or LastWriter.Shr1 => X86Cpu.ArithMask & ~X86Cpu.AF,
            _ => X86Cpu.ArithMask & ~(X86Cpu.AF | X86Cpu.OF),
        };
        a.and(edx, (int)mask);
        if (s.Last == LastWriter.Shl)
        {
            // OF = SF XOR CF (the interpreter's rule for every count).
            a.mov(eax, edx);
            a.shr(eax, 7);
            a.xor(eax, edx);
            a.and(eax, 1);
            a.shl(eax, 11);
            a.or(edx, eax);
        }
        a.mov(__qword_ptr[rdi + 8 * X86Cpu.JitFlagsSlot], rdx);
    }

    /// <summary>A self-looping block: the passes before this one (budget - r8) to the retired count. Clobbers RCX.</summary>
    private static void CountPasses(Assembler a, EmitState s)
    {
        if (!s.Loops) return;
        a.mov(ecx, LoopBudget);
        a.sub(ecx, r8d);
        a.imul(ecx, ecx, s.Count);
        a.add(__qword_ptr[rdi + 8 * X86Cpu.JitRetiredSlot], rcx);
    }

    /// <summary>Leaves for the dispatcher before op <paramref name="index"/> (flags captured in RDX), which the interpreter runs next.</summary>
    private static void ExitAt(Assembler a, EmitState s, int index, bool miss)
    {
        StoreFlags(a, s);
        CountPasses(a, s);
        a.mov(rax, Result(s.Id, index, s.Ops[index].Off, miss && index < s.Covered));
        a.ret();
    }

    /// <summary>
    /// The block is complete and RAX holds the next RIP (flags captured in RDX): count the block, then go on into
    /// the next block's code where chaining allows: a direct target in the same guest page through a chain slot
    /// (its stub returns to the dispatcher until the slot is patched), any other target in 64-bit code through the
    /// native jump cache; else back to the dispatcher.
    /// </summary>
    private static void ExitToRip(Assembler a, EmitState s, long? rel, int size)
    {
        a.mov(__qword_ptr[rdi + 8 * X86Cpu.JitRipSlot], rax);
        StoreFlags(a, s);
        CountPasses(a, s);
        a.add(__qword_ptr[rdi + 8 * X86Cpu.JitRetiredSlot], s.Count);
        if (!s.Chain || size != 8)
        {
            a.jmp(s.Leave);
            return;
        }
        a.mov(rax, __qword_ptr[rdi + 8 * X86Cpu.JitRipSlot]);
        long start = (long)(s.Key & 0xFFF);
        if (rel is long r && start + r >= 0 && start + r < 0x1000 && s.SlotCount < Translation.MaxSlots)
        {
            int n = s.SlotCount++;
            s.SlotTargets[n] = (ulong)((long)s.Key + r);
            s.StubLabels[n] = a.CreateLabel();
            a.mov(__qword_ptr[rdi + 8 * X86Cpu.BlockRipReg], rax);
            a.jmp(__qword_ptr[s.SlotLabels[n]]);
            a.Label(ref s.StubLabels[n]);
            a.mov(rax, Result(s.Id, Translation.Boundary, n, false));
            a.ret();
            return;
        }
        // Native jump cache: entry (lin ^ lin >> 12) & (size - 1), 32 bytes {lin, mode key, code}.
        a.mov(rcx, rax);
        a.add(rcx, __qword_ptr[rdi + 8 * (X86Cpu.SegBaseSlot + X86Cpu.CS)]);
        a.and(rcx, __qword_ptr[rdi + 8 * X86Cpu.JitLinMaskSlot]);
        a.mov(rdx, rcx);
        a.shr(rdx, 12);
        a.xor(rdx, rcx);
        a.and(edx, X86Cpu.NativeJumpCacheSize - 1);
        a.shl(edx, 5);
        a.add(rdx, __qword_ptr[rdi + 8 * X86Cpu.JitJumpCacheSlot]);
        a.cmp(rcx, __qword_ptr[rdx]);
        a.jne(s.Leave);
        a.mov(rcx, __qword_ptr[rdi + 8 * X86Cpu.JitModeSlot]);
        a.cmp(rcx, __qword_ptr[rdx + 8]);
        a.jne(s.Leave);
        a.mov(__qword_ptr[rdi + 8 * X86Cpu.BlockRipReg], rax);
        a.jmp(__qword_ptr[rdx + 16]);
    }

    /// <summary>The block's closing JMP/Jcc: next RIP = block RIP + target (or fall-through offset), masked to the IP size.</summary>
    private static void EmitBranchExit(Assembler a, ref Op op, OpForm form, EmitState s)
    {
        if (s.Loops)
        {
            // Taken = back to the block start: another pass unless the budget is spent. LEA, MOV and JRCXZ leave the flags alone.
            var back = a.CreateLabel();
            var spent = a.CreateLabel();
            if (form == OpForm.JmpRel) a.jmp(back);
            else
            {
                JumpIf(a, op.Cc, back);
                ExitTo(a, ref op, s, (int)op.NextOff);
            }
            a.Label(ref back);
            if (s.Written && s.Last == LastWriter.Logic)
            {
                // The next pass must start from the interpreter's flags exactly: AF = 0 after AND/OR/XOR/TEST
                // (AND AH clears OF and CF, both already 0 after a logic op; SAHF puts CF back from AH anyway).
                a.lahf();
                a.and(ah, 0xEF);
                a.sahf();
            }
            a.lea(r8, __[r8 - 1]);
            a.mov(rcx, r8);
            a.jrcxz(spent);
            a.jmp(s.Body);
            a.Label(ref spent);
            a.lea(r8, __[r8 + 1]); // this pass ends here: it is the final one, not an extra one
            ExitTo(a, ref op, s, 0);
            return;
        }
        if (form == OpForm.JmpRel)
        {
            ExitTo(a, ref op, s, (long)op.Imm);
            return;
        }
        var taken = a.CreateLabel();
        Capture(a, s); // PUSHF/POP leave the flags for the JCC
        JumpIf(a, op.Cc, taken);
        ExitTo(a, ref op, s, op.NextOff, false);
        a.Label(ref taken);
        ExitTo(a, ref op, s, (long)op.Imm, false);
    }

    /// <summary>Leaves for block RIP + <paramref name="offset"/>.</summary>
    private static void ExitTo(Assembler a, ref Op op, EmitState s, long offset, bool capture = true)
    {
        if (capture) Capture(a, s);
        a.mov(rax, __qword_ptr[rdi + 8 * X86Cpu.BlockRipReg]);
        if (offset != 0) a.lea(rax, __[rax + (int)offset]);
        MaskRip(a, op.Size);
        ExitToRip(a, s, offset, op.Size);
    }

    private static void MaskRip(Assembler a, int size)
    {
        if (size == 4) a.mov(eax, eax);
        else if (size == 2) a.movzx(eax, ax);
    }

    private static void JumpIf(Assembler a, int cc, Label l)
    {
        switch (cc)
        {
            case 0: a.jo(l); break;
            case 1: a.jno(l); break;
            case 2: a.jb(l); break;
            case 3: a.jae(l); break;
            case 4: a.je(l); break;
            case 5: a.jne(l); break;
            case 6: a.jbe(l); break;
            case 7: a.ja(l); break;
            case 8: a.js(l); break;
            case 9: a.jns(l); break;
            case 10: a.jp(l); break;
            case 11: a.jnp(l); break;
            case 12: a.jl(l); break;
            case 13: a.jge(l); break;
            case 14: a.jle(l); break;
            default: a.jg(l); break;
        }
    }
}
