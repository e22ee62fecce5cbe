using Iced.Intel;
using static SharpVmm.Emulator.Handlers;

namespace SharpVmm.Emulator;

internal sealed unsafe partial class Translator
{
    private static void Bin<T>(ref Op op, ref Instruction ins) where T : struct, IBinOp
    {
        bool r0 = IsReg(ref ins, 0);
        var k1 = ins.GetOpKind(1);
        bool cmp = typeof(T) == typeof(OpCmp), test = typeof(T) == typeof(OpTest);
        if (r0 && k1 == OpKind.Register)
        {
            op.H = op.Size == 8 ? &BinRR64<T> : op.Size == 4 ? &BinRR32<T> : &BinRR<T>;
            if (op.Size >= 4 && (cmp || test))
                op.Fuse = cmp ? (op.Size == 8 ? FuseKind.CmpRR64 : FuseKind.CmpRR32) : (op.Size == 8 ? FuseKind.TestRR64 : FuseKind.TestRR32);
        }
        else if (r0 && k1 == OpKind.Memory) op.H = &BinRM<T>;
        else if (r0)
        {
            op.H = op.Size == 8 ? &BinRI64<T> : op.Size == 4 ? &BinRI32<T> : &BinRI<T>;
            if (op.Size >= 4 && (cmp || test))
                op.Fuse = cmp ? (op.Size == 8 ? FuseKind.CmpRI64 : FuseKind.CmpRI32) : (op.Size == 8 ? FuseKind.TestRI64 : FuseKind.TestRI32);
        }
        else if (k1 == OpKind.Register) op.H = &BinMR<T>;
        else op.H = &BinMI<T>;
    }

    private static void Un<T>(ref Op op, ref Instruction ins) where T : struct, IUnOp
        => op.H = !IsReg(ref ins, 0) ? &UnM<T> : op.Size == 8 ? &UnR64<T> : op.Size == 4 ? &UnR32<T> : &UnR<T>;

    /// <summary>Operand size of stack instructions, from how far they move the stack pointer.</summary>
    private static int StackOperandSize(ref Instruction ins, int bitness, int extra = 0)
    {
        int inc = Math.Abs(ins.StackPointerIncrement) - extra;
        return inc is 2 or 4 or 8 ? inc : bitness == 16 ? 2 : bitness == 32 ? 4 : 8;
    }

    /// <summary>ENTER/LEAVE: Iced names them Enterw/Enterd/Enterq, Leavew/Leaved/Leaveq.</summary>
    private static int SuffixSize(ref Instruction ins) => IcedNames.Of(ins.Code)[5] switch { 'w' => 2, 'd' => 4, _ => 8 };

    private static bool TranslateInteger(ref Op op, ref Instruction ins, int bitness)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Add: Bin<OpAdd>(ref op, ref ins); return true;
            case Mnemonic.Or: Bin<OpOr>(ref op, ref ins); return true;
            case Mnemonic.Adc: Bin<OpAdc>(ref op, ref ins); return true;
            case Mnemonic.Sbb: Bin<OpSbb>(ref op, ref ins); return true;
            case Mnemonic.And: Bin<OpAnd>(ref op, ref ins); return true;
            case Mnemonic.Sub: Bin<OpSub>(ref op, ref ins); return true;
            case Mnemonic.Xor: Bin<OpXor>(ref op, ref ins); return true;
            case Mnemonic.Cmp: Bin<OpCmp>(ref op, ref ins); return true;
            case Mnemonic.Test: Bin<OpTest>(ref op, ref ins); return true;
            case Mnemonic.Not: Un<OpNot>(ref op, ref ins); return true;
            case Mnemonic.Neg: Un<OpNeg>(ref op, ref ins); return true;
            case Mnemonic.Inc: Un<OpInc>(ref op, ref ins); return true;
            case Mnemonic.Dec: Un<OpDec>(ref op, ref ins); return true;

            case Mnemonic.Mov:
            {
                for (int i = 0; i < ins.OpCount; i++)
                    if (ins.GetOpKind(i) == OpKind.Register && !ins.GetOpRegister(i).IsGPR()) return false; // Sreg/CRn/DRn
                bool r0 = IsReg(ref ins, 0);
                var k1 = ins.GetOpKind(1);
                if (r0 && k1 == OpKind.Register) op.H = op.Size == 8 ? &MovRR64 : op.Size == 4 ? &MovRR32 : &MovRR;
                else if (r0 && k1 == OpKind.Memory) op.H = op.Size == 8 ? &MovRM64 : op.Size == 4 ? &MovRM32 : &MovRM;
                else if (r0) op.H = op.Size == 8 ? &MovRI64 : &MovRI;
                else if (k1 == OpKind.Register) op.H = op.Size == 8 ? &MovMR64 : op.Size == 4 ? &MovMR32 : &MovMR;
                else op.H = &MovMI;
                return true;
            }
            case Mnemonic.Movzx:
            case Mnemonic.Movsx:
            case Mnemonic.Movsxd:
                op.Cc = ins.Mnemonic == Mnemonic.Movzx ? (byte)0 : (byte)1;
                op.Size2 = IsReg(ref ins, 1) ? (byte)ins.Op1Register.GetSize() : (byte)ins.MemorySize.GetSize();
                op.H = IsReg(ref ins, 1) ? &MovxRR : &MovxRM;
                return true;
            case Mnemonic.Lea:
                op.Size = (byte)ins.Op0Register.GetSize();
                op.H = op.Size == 8 ? &Lea64 : op.Size == 4 ? &Lea32 : &Lea;
                return true;

            case Mnemonic.Push:
                if (ins.OpCount == 1 && IsReg(ref ins, 0) && ins.Op0Register.IsSegmentRegister()) return false;
                op.Size = (byte)StackOperandSize(ref ins, bitness);
                if (IsReg(ref ins, 0)) op.H = &PushR;
                else if (IsMem(ref ins, 0)) op.H = &PushM;
                else { op.H = &PushI; op.Imm = ins.GetImmediate(0) & X86Cpu.SizeMask(op.Size); }
                return true;
            case Mnemonic.Pop:
                if (IsReg(ref ins, 0) && ins.Op0Register.IsSegmentRegister()) return false;
                op.Size = (byte)StackOperandSize(ref ins, bitness);
                op.H = IsReg(ref ins, 0) ? &PopR : &PopM;
                return true;
            case Mnemonic.Pushf:
            case Mnemonic.Pushfd:
            case Mnemonic.Pushfq:
                op.Size = (byte)(ins.Mnemonic == Mnemonic.Pushf ? 2 : ins.Mnemonic == Mnemonic.Pushfd ? 4 : 8);
                op.H = &Pushf;
                return true;
            case Mnemonic.Pusha:
            case Mnemonic.Pushad:
                op.Size = (byte)(ins.Mnemonic == Mnemonic.Pusha ? 2 : 4);
                op.H = &Pusha;
                return true;
            case Mnemonic.Popa:
            case Mnemonic.Popad:
                op.Size = (byte)(ins.Mnemonic == Mnemonic.Popa ? 2 : 4);
                op.H = &Popa;
                return true;

            case Mnemonic.Xchg:
                if (IsReg(ref ins, 0) && IsReg(ref ins, 1)) op.H = &XchgRR;
                else op.H = &XchgRM;
                return true;
            case Mnemonic.Cmpxchg:
                op.H = IsReg(ref ins, 0) ? &CmpxchgR : &CmpxchgM;
                return true;
            case Mnemonic.Xadd:
                op.H = IsReg(ref ins, 0) ? &XaddRR : &XaddM;
                return true;
            case Mnemonic.Cmpxchg8b:
            case Mnemonic.Cmpxchg16b:
                op.Size = (byte)(ins.Mnemonic == Mnemonic.Cmpxchg8b ? 8 : 16);
                op.H = &Cmpxchg8b16b;
                return true;

            case Mnemonic.Rol: case Mnemonic.Ror: case Mnemonic.Rcl: case Mnemonic.Rcr:
            case Mnemonic.Shl: case Mnemonic.Sal: case Mnemonic.Shr: case Mnemonic.Sar:
                op.Cc = ins.Mnemonic switch
                {
                    Mnemonic.Rol => 0, Mnemonic.Ror => 1, Mnemonic.Rcl => 2, Mnemonic.Rcr => 3,
                    Mnemonic.Shl => 4, Mnemonic.Shr => 5, Mnemonic.Sal => 6, _ => 7,
                };
                if (ins.GetOpKind(1) == OpKind.Register) op.Size2 = 1; // CL
                else op.Imm = ins.GetImmediate(1);
                op.H = IsReg(ref ins, 0) ? &ShiftR : &ShiftM;
                if (IsReg(ref ins, 0) && op.Size2 == 0 && op.Cc is 4 or 5 or 6 or 7 && op.Size >= 4)
                {
                    op.Imm &= op.Size == 8 ? 63UL : 31UL;
                    if (op.Imm != 0) op.H = op.Size == 8 ? &ShiftImm64 : &ShiftImm32;
                }
                return true;
            case Mnemonic.Shld:
            case Mnemonic.Shrd:
                op.Cc = ins.Mnemonic == Mnemonic.Shld ? (byte)0 : (byte)1;
                if (ins.GetOpKind(2) == OpKind.Register) op.Size2 = 1;
                else op.Imm = ins.GetImmediate(2);
                op.H = IsReg(ref ins, 0) ? &DoubleShiftR : &DoubleShiftM;
                return true;

            case Mnemonic.Mul:
            case Mnemonic.Div:
            case Mnemonic.Idiv:
                op.Cc = ins.Mnemonic == Mnemonic.Mul ? (byte)0 : ins.Mnemonic == Mnemonic.Div ? (byte)2 : (byte)3;
                op.H = IsReg(ref ins, 0) ? &MulDivR : &MulDivM;
                return true;
            case Mnemonic.Imul:
                if (ins.OpCount == 1)
                {
                    op.Cc = 1;
                    op.H = IsReg(ref ins, 0) ? &MulDivR : &MulDivM;
                    return true;
                }
                op.Cc = ins.OpCount == 3 ? (byte)1 : (byte)0;
                if (ins.OpCount == 3) op.Imm = ins.GetImmediate(2) & X86Cpu.SizeMask(op.Size);
                op.H = IsReg(ref ins, 1) ? &ImulR : &ImulM;
                return true;

            case Mnemonic.Cbw: op.Size = 2; op.H = &Cbw; return true;
            case Mnemonic.Cwde: op.Size = 4; op.H = &Cbw; return true;
            case Mnemonic.Cdqe: op.Size = 8; op.H = &Cbw; return true;
            case Mnemonic.Cwd: op.Size = 2; op.H = &Cwd; return true;
            case Mnemonic.Cdq: op.Size = 4; op.H = &Cwd; return true;
            case Mnemonic.Cqo: op.Size = 8; op.H = &Cwd; return true;

            case Mnemonic.Bt: case Mnemonic.Bts: case Mnemonic.Btr: case Mnemonic.Btc:
                op.Cc = ins.Mnemonic switch { Mnemonic.Bt => 0, Mnemonic.Bts => 1, Mnemonic.Btr => 2, _ => 3 };
                if (ins.GetOpKind(1) != OpKind.Register) { op.Size2 = 1; op.Imm = ins.GetImmediate(1); }
                else if (!IsReg(ref ins, 0)) op.Rm = op.Reg; // memory form: the offset register was recorded first
                op.H = IsReg(ref ins, 0) ? &BitTestR : &BitTestM;
                return true;
            case Mnemonic.Bsf: case Mnemonic.Bsr: case Mnemonic.Tzcnt: case Mnemonic.Lzcnt: case Mnemonic.Popcnt:
                op.Cc = ins.Mnemonic switch { Mnemonic.Bsf => 0, Mnemonic.Bsr => 1, Mnemonic.Tzcnt => 2, Mnemonic.Lzcnt => 3, _ => 4 };
                op.H = IsReg(ref ins, 1) ? &BitScanR : &BitScanM;
                return true;
            case Mnemonic.Andn: case Mnemonic.Bextr: case Mnemonic.Blsi: case Mnemonic.Blsmsk: case Mnemonic.Blsr:
            {
                op.Cc = ins.Mnemonic switch { Mnemonic.Andn => 0, Mnemonic.Bextr => 1, Mnemonic.Blsi => 2, Mnemonic.Blsmsk => 3, _ => 4 };
                op.Size = (byte)ins.Op0Register.GetSize();
                op.Reg = (byte)RegIndex(ins.Op0Register);
                int rmIndex = ins.Mnemonic == Mnemonic.Andn ? 2 : 1;
                if (ins.Mnemonic == Mnemonic.Andn) op.Rm = (byte)RegIndex(ins.Op1Register);
                else if (ins.Mnemonic == Mnemonic.Bextr) op.Rm = (byte)RegIndex(ins.Op2Register);
                if (ins.GetOpKind(rmIndex) == OpKind.Register) op.Size2 = (byte)RegIndex(ins.GetOpRegister(rmIndex));
                op.H = &Bmi1;
                return true;
            }
            case Mnemonic.Bswap: op.H = &Bswap; return true;
            case Mnemonic.Movbe: op.H = IsReg(ref ins, 0) ? &MovbeRM : &MovbeMR; return true;

            case Mnemonic.Lahf: op.H = &Lahf; return true;
            case Mnemonic.Sahf: op.H = &Sahf; return true;
            case Mnemonic.Clc: op.Cc = 0; op.H = &FlagOp; return true;
            case Mnemonic.Stc: op.Cc = 1; op.H = &FlagOp; return true;
            case Mnemonic.Cmc: op.Cc = 2; op.H = &FlagOp; return true;
            case Mnemonic.Cld: op.Cc = 3; op.H = &FlagOp; return true;
            case Mnemonic.Std: op.Cc = 4; op.H = &FlagOp; return true;

            case Mnemonic.Clflush: case Mnemonic.Clflushopt: case Mnemonic.Clwb:
                op.H = &ProbeRead; // no cache to flush, but the line must be mapped (#PF/#GP as a read)
                return true;
            case Mnemonic.Nop: case Mnemonic.Pause: case Mnemonic.Lfence: case Mnemonic.Sfence: case Mnemonic.Mfence:
            case Mnemonic.Prefetchnta: case Mnemonic.Prefetcht0:
            case Mnemonic.Prefetcht1: case Mnemonic.Prefetcht2: case Mnemonic.Prefetchw: case Mnemonic.Prefetch:
            case Mnemonic.Endbr64: case Mnemonic.Endbr32:
                op.H = &Nop;
                return true;

            case Mnemonic.Enter: op.Size = (byte)SuffixSize(ref ins); op.Imm2 = ins.Immediate8_2nd; op.H = &Enter; return true;
            case Mnemonic.Leave: op.Size = (byte)SuffixSize(ref ins); op.H = &Leave; return true;
            case Mnemonic.Xlatb: op.H = &Xlat; return true;

            case Mnemonic.Daa: op.Cc = 0; op.H = &DecimalAdjust; return true;
            case Mnemonic.Das: op.Cc = 1; op.H = &DecimalAdjust; return true;
            case Mnemonic.Aaa: op.Cc = 0; op.H = &AsciiAdjust; return true;
            case Mnemonic.Aas: op.Cc = 1; op.H = &AsciiAdjust; return true;
            case Mnemonic.Aam: op.H = &Aam; return true;
            case Mnemonic.Aad: op.H = &Aad; return true;
            case Mnemonic.Salc: op.H = &Salc; return true;
            case Mnemonic.Bound: op.Size = (byte)ins.Op0Register.GetSize(); op.H = &Bound; return true;
            case Mnemonic.Arpl: op.H = &Arpl; return true;

            case Mnemonic.In:
            case Mnemonic.Out:
            {
                int acc = ins.Mnemonic == Mnemonic.In ? 0 : 1, port = 1 - acc;
                op.Size = (byte)ins.GetOpRegister(acc).GetSize();
                if (ins.GetOpKind(port) == OpKind.Register) op.Cc = 1;
                else op.Imm = ins.GetImmediate(port);
                op.H = ins.Mnemonic == Mnemonic.In ? &In : &Out;
                return true;
            }

            case Mnemonic.Jmp:
                if (ins.Op0Kind is OpKind.FarBranch16 or OpKind.FarBranch32 || (IsMem(ref ins, 0) && IsFarMemory(ref ins))) return false;
                op.Size = BranchSize(ref ins, bitness);
                op.H = ins.Op0Kind switch
                {
                    OpKind.Register => &JmpR,
                    OpKind.Memory => &JmpM,
                    _ => &JmpRel,
                };
                return true;
            case Mnemonic.Call:
                if (ins.Op0Kind is OpKind.FarBranch16 or OpKind.FarBranch32 || (IsMem(ref ins, 0) && IsFarMemory(ref ins))) return false;
                op.Size = BranchSize(ref ins, bitness);
                op.H = ins.Op0Kind switch
                {
                    OpKind.Register => &CallR,
                    OpKind.Memory => &CallM,
                    _ => &CallRel,
                };
                return true;
            case Mnemonic.Ret:
                op.Imm = ins.OpCount > 0 ? ins.GetImmediate(0) : 0;
                op.Size = (byte)StackOperandSize(ref ins, bitness, (int)op.Imm);
                op.H = &Ret;
                return true;
            case Mnemonic.Loop: case Mnemonic.Loope: case Mnemonic.Loopne:
            case Mnemonic.Jcxz: case Mnemonic.Jecxz: case Mnemonic.Jrcxz:
            {
                op.Cc = ins.Mnemonic switch { Mnemonic.Loop => 0, Mnemonic.Loope => 1, Mnemonic.Loopne => 2, _ => 3 };
                // The counter is CX/ECX/RCX by address size: Iced names LOOPs "..._ECX" and JCXZ by mnemonic.
                string name = IcedNames.Of(ins.Code);
                op.Size2 = ins.Mnemonic switch
                {
                    Mnemonic.Jcxz => 2,
                    Mnemonic.Jecxz => 4,
                    Mnemonic.Jrcxz => 8,
                    _ => (byte)(name.EndsWith("RCX", StringComparison.Ordinal) ? 8 : name.EndsWith("ECX", StringComparison.Ordinal) ? 4 : 2),
                };
                op.Size = BranchSize(ref ins, bitness);
                op.H = &Loop;
                return true;
            }

            case Mnemonic.Movsb: case Mnemonic.Movsw: case Mnemonic.Movsd: case Mnemonic.Movsq:
            case Mnemonic.Cmpsb: case Mnemonic.Cmpsw: case Mnemonic.Cmpsd: case Mnemonic.Cmpsq:
            case Mnemonic.Stosb: case Mnemonic.Stosw: case Mnemonic.Stosd: case Mnemonic.Stosq:
            case Mnemonic.Lodsb: case Mnemonic.Lodsw: case Mnemonic.Lodsd: case Mnemonic.Lodsq:
            case Mnemonic.Scasb: case Mnemonic.Scasw: case Mnemonic.Scasd: case Mnemonic.Scasq:
            case Mnemonic.Insb: case Mnemonic.Insw: case Mnemonic.Insd:
            case Mnemonic.Outsb: case Mnemonic.Outsw: case Mnemonic.Outsd:
            {
                if (op.Size2 == 0) return false; // SSE MOVSD/CMPSD share the mnemonic
                string m = IcedNames.Of(ins.Mnemonic);
                op.Size = m[^1] switch { 'b' => 1, 'w' => 2, 'd' => 4, _ => 8 };
                if (ins.Mnemonic is Mnemonic.Stosb or Mnemonic.Stosw or Mnemonic.Stosd or Mnemonic.Stosq
                    or Mnemonic.Scasb or Mnemonic.Scasw or Mnemonic.Scasd or Mnemonic.Scasq
                    or Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd) op.Seg = X86Cpu.ES;
                op.H = m[..^1] switch
                {
                    "Movs" => &Movs,
                    "Cmps" => &Cmps,
                    "Stos" => &Stos,
                    "Lods" => &Lods,
                    "Scas" => &Scas,
                    "Ins" => &Ins,
                    _ => &Outs,
                };
                return true;
            }
        }
        if (ins.FlowControl == FlowControl.ConditionalBranch && ins.ConditionCode != ConditionCode.None)
        {
            op.Cc = (byte)(ins.ConditionCode - 1);
            op.Size = BranchSize(ref ins, bitness);
            op.H = &Jcc;
            return true;
        }
        if (ins.ConditionCode != ConditionCode.None && IcedNames.Of(ins.Mnemonic).StartsWith("Set", StringComparison.Ordinal))
        {
            op.Cc = (byte)(ins.ConditionCode - 1);
            op.Size = 1;
            op.H = IsReg(ref ins, 0) ? &SetccR : &SetccM;
            return true;
        }
        if (ins.ConditionCode != ConditionCode.None && IcedNames.Of(ins.Mnemonic).StartsWith("Cmov", StringComparison.Ordinal))
        {
            op.Cc = (byte)(ins.ConditionCode - 1);
            op.H = IsReg(ref ins, 1) ? &CmovRR : &CmovRM;
            return true;
        }
        return false;
    }

    private static bool IsFarMemory(ref Instruction ins) => ins.MemorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32 or MemorySize.SegPtr64;

    private static byte BranchSize(ref Instruction ins, int bitness)
    {
        for (int i = 0; i < ins.OpCount; i++)
        {
            switch (ins.GetOpKind(i))
            {
                case OpKind.NearBranch16: return 2;
                case OpKind.NearBranch32: return 4;
                case OpKind.NearBranch64: return 8;
                case OpKind.Register: return (byte)ins.GetOpRegister(i).GetSize();
                case OpKind.Memory: return (byte)ins.MemorySize.GetSize();
            }
        }
        return (byte)StackOperandSize(ref ins, bitness);
    }
}
