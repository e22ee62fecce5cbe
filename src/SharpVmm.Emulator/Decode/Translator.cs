using Iced.Intel;
using static SharpVmm.Emulator.Handlers;

namespace SharpVmm.Emulator;

/// <summary>Decodes guest code with Iced into <see cref="Op"/> arrays: the one place that knows Iced's operand model.</summary>
internal sealed unsafe partial class Translator
{
    public const int MaxOps = 48;
    private readonly PointerCodeReader _reader = new();
    private readonly Decoder _d16, _d32, _d64;
    /// <summary>Room for segment check ops too (PUSHA/POPA need 8, FXSAVE-like forms 1, most none).</summary>
    private readonly Op[] _ops = new Op[MaxOps * 4];
    private readonly InstructionInfoFactory _infoFactory = new();
    private readonly Instruction[] _ins = new Instruction[MaxOps];

    public Translator()
    {
        _d16 = Decoder.Create(16, _reader);
        _d32 = Decoder.Create(32, _reader);
        _d64 = Decoder.Create(64, _reader);
    }

    /// <summary>
    /// Decodes from <paramref name="code"/> (the block start) up to <paramref name="available"/> bytes. Returns null
    /// when the first instruction does not fit (it straddles the page end: the caller decodes it from both pages).
    /// </summary>
    public Block? DecodeBlock(byte* code, int available, int bitness, ulong key, ulong physPage, int maxOps = MaxOps, ulong segChecks = 0)
    {
        var d = bitness == 64 ? _d64 : bitness == 32 ? _d32 : _d16;
        _reader.Reset(code, available);
        d.IP = 0;
        int n = 0, k = 0, kept = 0;
        bool branch = false, ssLoad = false;
        ushort endOff = 0;
        while (n < maxOps && k < _ops.Length - 16)
        {
            d.Decode(out _ins[kept]);
            ref Instruction ins = ref _ins[kept];
            if (ins.IsInvalid && d.LastError == DecoderError.NoMoreBytes)
            {
                if (n == 0) return null;
                break;
            }
            if (n == 0) ssLoad = IsSsLoad(ref ins);
            if (segChecks != 0 && !ins.IsInvalid) k = AddSegmentChecks(ref ins, segChecks, k);
            if (!ins.IsInvalid && NeedsWideDisp(ref ins, bitness))
            {
                ref Op w = ref _ops[k++];
                w = default;
                FillWideDisp(ref w, ref ins);
            }
            ref Op op = ref _ops[k];
            op = default;
            bool ends = Translate(ref op, ref ins, bitness, kept);
            // Only the slow handlers read the Iced form; other instructions' slots are reused by the next decode.
            if ((op.Flags & OpFlags.UsesInstr) != 0) kept++;
            endOff = op.NextOff;
            n++;
            if (k > 0 && TryFuseCompareBranch(ref _ops[k - 1], ref op, ref ins))
            {
                branch = true;
                break;
            }
            k++;
            if (ends) { branch = true; break; }
            if ((int)ins.NextIP >= available) break;
        }
        return new Block(_ops[..k], kept == 0 ? [] : _ins[..kept], key, physPage, branch, endOff, ssLoad, n);
    }

    /// <summary>
    /// Folds a Jcc into the CMP/TEST right before it (32/64-bit, register with register or immediate: forms that
    /// cannot fault, so no exception can land between the two). See Exec/Fused.cs for the layout.
    /// </summary>
    private static bool TryFuseCompareBranch(ref Op cmp, ref Op jcc, ref Instruction jccIns)
    {
        byte kind = cmp.Fuse;
        if (kind == FuseKind.None || !jccIns.IsJccShortOrNear || cmp.NextOff != jcc.Off || (cmp.Flags & ~OpFlags.ImmSrc) != 0) return false;
        bool imm = FuseKind.IsImm(kind);
        int size = FuseKind.Size(kind);
        if (imm)
        {
            if (size == 8 ? (long)cmp.Imm != (int)(long)cmp.Imm : cmp.Imm > uint.MaxValue) return false;
            cmp.Disp = (int)cmp.Imm;
        }
        cmp.H = kind switch
        {
            FuseKind.CmpRR64 => &CmpJccRR64,
            FuseKind.CmpRR32 => &CmpJccRR32,
            FuseKind.TestRR64 => &TestJccRR64,
            FuseKind.TestRR32 => &TestJccRR32,
            FuseKind.CmpRI64 => &CmpJccRI64,
            FuseKind.CmpRI32 => &CmpJccRI32,
            FuseKind.TestRI64 => &TestJccRI64,
            _ => &TestJccRI32,
        };
        cmp.Size2 = (byte)size;
        cmp.Imm2 = cmp.NextOff; // where the Jcc starts
        cmp.Imm = jcc.Imm;
        cmp.NextOff = jcc.NextOff;
        cmp.Size = jcc.Size;
        cmp.Cc = jcc.Cc;
        cmp.Flags = OpFlags.Fused;
        return true;
    }

    private static bool IsSsLoad(ref Instruction ins)
        => ins.Mnemonic is Mnemonic.Mov or Mnemonic.Pop && ins.Op0Kind == OpKind.Register && ins.Op0Register == Register.SS;

    /// <summary>
    /// Outside 64-bit mode with a non-flat segment in use: one check op per memory access (explicit operands and
    /// implicit stack/string ones, as Iced lists them) through a segment in <paramref name="segChecks"/>.
    /// String instructions under REP are checked at their first element only.
    /// </summary>
    private int AddSegmentChecks(ref Instruction ins, ulong segChecks, int k)
    {
        var info = _infoFactory.GetInfo(ins);
        foreach (var m in info.GetUsedMemory())
        {
            if (m.Access == OpAccess.NoMemAccess) continue;
            int seg = SegIndex(m.Segment);
            if ((segChecks & (1UL << seg)) == 0) continue;
            if (m.Base != Register.None && !(m.Base.IsGPR16() || m.Base.IsGPR32() || m.Base.IsGPR64())) continue;
            if (m.Index != Register.None && !(m.Index.IsGPR16() || m.Index.IsGPR32() || m.Index.IsGPR64())) continue;
            ref Op c = ref _ops[k++];
            c = default;
            c.H = &SegmentCheck;
            c.Off = (ushort)ins.IP;
            c.NextOff = (ushort)ins.NextIP;
            c.Seg = (byte)seg;
            c.Base = (byte)(m.Base == Register.None ? X86Cpu.ZeroReg : m.Base.GetNumber());
            c.Index = (byte)(m.Index == Register.None ? X86Cpu.ZeroReg : m.Index.GetNumber());
            c.Scale = (byte)System.Numerics.BitOperations.Log2((uint)Math.Max(1, m.Scale));
            c.Disp = (int)m.Displacement; // outside 64-bit mode: 32 bits at most, masked to the address size
            c.AddrShift = Op.ShiftForAddressSize(m.AddressSize == CodeSize.Code16 ? 2 : 4);
            c.Imm = (ulong)Math.Max(1, m.MemorySize.GetSize());
            c.Cc = m.Access is OpAccess.Write or OpAccess.CondWrite or OpAccess.ReadWrite or OpAccess.ReadCondWrite ? (byte)1 : (byte)0;
            if (k >= _ops.Length - 1) break;
        }
        return k;
    }

    private static int RegIndex(Register r)
    {
        int num = r.GetNumber();
        if (r.IsGPR8())
        {
            if (num >= 4 && num < 8) return 20 + num - 4; // AH, CH, DH, BH
            if (num >= 8) return num - 4;                  // SPL..R15L
            return num;
        }
        return num;
    }

    /// <summary>Fills the generic operand fields; returns true when it saw a memory operand.</summary>
    private static void FillOperands(ref Op op, ref Instruction ins, int bitness)
    {
        op.Off = (ushort)ins.IP;
        op.NextOff = (ushort)ins.NextIP;
        op.Base = X86Cpu.ZeroReg;
        op.Index = X86Cpu.ZeroReg;
        op.Seg = X86Cpu.DS;
        op.AddrShift = Op.ShiftForAddressSize(bitness / 8);
        int regs = 0;
        bool immSeen = false;
        for (int i = 0; i < ins.OpCount; i++)
        {
            switch (ins.GetOpKind(i))
            {
                case OpKind.Register:
                {
                    var r = ins.GetOpRegister(i);
                    byte idx = (byte)(r.IsGPR() ? RegIndex(r) : r.IsSegmentRegister() ? SegIndex(r) : r.GetNumber());
                    if (regs == 0) op.Reg = idx; else if (regs == 1) op.Rm = idx;
                    if (regs == 0 && op.Size == 0 && r.IsGPR()) op.Size = (byte)r.GetSize();
                    regs++;
                    break;
                }
                case OpKind.Memory:
                    op.Flags |= OpFlags.Mem;
                    FillMemory(ref op, ref ins, bitness);
                    if (op.Size == 0) op.Size = (byte)ins.MemorySize.GetSize();
                    break;
                case OpKind.Immediate8:
                case OpKind.Immediate16:
                case OpKind.Immediate32:
                case OpKind.Immediate64:
                case OpKind.Immediate8to16:
                case OpKind.Immediate8to32:
                case OpKind.Immediate8to64:
                case OpKind.Immediate32to64:
                    if (!immSeen) op.Imm = ins.GetImmediate(i); else op.Imm2 = (ushort)ins.GetImmediate(i); // ENTER's level, EXTRQ/INSERTQ: 8 bits
                    immSeen = true;
                    break;
                case OpKind.Immediate8_2nd:
                    op.Imm2 = ins.Immediate8_2nd;
                    break;
                case OpKind.NearBranch16:
                case OpKind.NearBranch32:
                case OpKind.NearBranch64:
                    op.Imm = ins.NearBranchTarget;
                    break;
                case OpKind.FarBranch16:
                case OpKind.FarBranch32:
                    op.Imm = ins.GetOpKind(i) == OpKind.FarBranch16 ? ins.FarBranch16 : ins.FarBranch32;
                    op.Imm2 = ins.FarBranchSelector;
                    break;
                case OpKind.MemorySegSI:
                case OpKind.MemorySegESI:
                case OpKind.MemorySegRSI:
                case OpKind.MemorySegDI:
                case OpKind.MemorySegEDI:
                case OpKind.MemorySegRDI:
                    op.Seg = SegIndex(ins.MemorySegment);
                    op.Size2 = StringAddrSize(ins.GetOpKind(i));
                    break;
                case OpKind.MemoryESDI:
                case OpKind.MemoryESEDI:
                case OpKind.MemoryESRDI:
                    op.Size2 = StringAddrSize(ins.GetOpKind(i));
                    break;
            }
        }
        if (ins.HasLockPrefix) op.Flags |= OpFlags.Lock;
        if (ins.StackPointerIncrement != 0 || ins.Mnemonic is Mnemonic.Enter or Mnemonic.Leave) op.Flags |= OpFlags.Stack;
        if (ins.HasRepePrefix) op.Flags |= OpFlags.Rep;
        if (ins.HasRepnePrefix) op.Flags |= OpFlags.Repne;
    }

    private static byte StringAddrSize(OpKind k) => k switch
    {
        OpKind.MemorySegSI or OpKind.MemorySegDI or OpKind.MemoryESDI => 2,
        OpKind.MemorySegESI or OpKind.MemorySegEDI or OpKind.MemoryESEDI => 4,
        _ => 8,
    };

    private static byte SegIndex(Register r) => r switch
    {
        Register.ES => X86Cpu.ES,
        Register.CS => X86Cpu.CS,
        Register.SS => X86Cpu.SS,
        Register.FS => X86Cpu.FS,
        Register.GS => X86Cpu.GS,
        _ => X86Cpu.DS,
    };

    private static int AddressSize(ref Instruction ins, int bitness)
    {
        var b = ins.MemoryBase;
        var x = ins.MemoryIndex;
        int asz;
        if (b != Register.None) asz = b is Register.RIP ? 8 : b is Register.EIP ? 4 : b.GetSize();
        else if (x != Register.None) asz = x.GetSize();
        else asz = ins.MemoryDisplSize is 2 or 4 or 8 ? ins.MemoryDisplSize : bitness / 8;
        if (bitness == 64 && asz == 2) asz = 8;
        return asz;
    }

    private static byte BaseSlot(Register b)
        => (byte)(b is Register.RIP or Register.EIP ? X86Cpu.BlockRipReg : b != Register.None ? b.GetNumber() : X86Cpu.ZeroReg);

    /// <summary>
    /// True when the instruction's memory displacement does not fit <see cref="Op.Disp"/>: only with 64-bit
    /// addressing (moffs64, or RIP-relative within a page of ±2 GiB); narrower addresses are masked anyway.
    /// </summary>
    private static bool NeedsWideDisp(ref Instruction ins, int bitness)
    {
        bool mem = false;
        for (int i = 0; i < ins.OpCount; i++) mem |= ins.GetOpKind(i) == OpKind.Memory;
        if (!mem || AddressSize(ref ins, bitness) != 8) return false;
        long d = (long)ins.MemoryDisplacement64;
        return d != (int)d;
    }

    /// <summary>The op before one with a wide displacement: base register + displacement into <see cref="X86Cpu.WideDispReg"/>.</summary>
    private static void FillWideDisp(ref Op op, ref Instruction ins)
    {
        op.H = &WideDisp;
        op.Off = (ushort)ins.IP;
        op.NextOff = (ushort)ins.NextIP;
        op.Base = BaseSlot(ins.MemoryBase);
        op.Imm = ins.MemoryDisplacement64;
    }

    private static void FillMemory(ref Op op, ref Instruction ins, int bitness)
    {
        var x = ins.MemoryIndex;
        int asz = AddressSize(ref ins, bitness);
        op.AddrShift = Op.ShiftForAddressSize(asz);
        op.Base = BaseSlot(ins.MemoryBase);
        if (x != Register.None && x.IsGPR()) op.Index = (byte)x.GetNumber();
        op.Scale = (byte)System.Numerics.BitOperations.Log2((uint)Math.Max(1, ins.MemoryIndexScale));
        long d = (long)ins.MemoryDisplacement64;
        if (asz == 8 && d != (int)d)
        {
            op.Base = X86Cpu.WideDispReg; // the WideDisp op before this one put base + displacement there
            op.Disp = 0;
        }
        else op.Disp = (int)d;
        op.Seg = SegIndex(ins.MemorySegment);
    }

    private static bool IsReg(ref Instruction ins, int i) => ins.GetOpKind(i) == OpKind.Register;
    private static bool IsMem(ref Instruction ins, int i) => ins.GetOpKind(i) == OpKind.Memory;

    /// <summary>Chooses the handler. Returns true when the op ends the block (it sets RIP itself).</summary>
    private static bool Translate(ref Op op, ref Instruction ins, int bitness, int index)
    {
        FillOperands(ref op, ref ins, bitness);
        if (ins.IsInvalid)
        {
            op.H = &InvalidOpcode;
            return true;
        }
        if (op.Size != 0 && op.Size < 8) op.Imm &= X86Cpu.SizeMask(op.Size);
        if (TranslateInteger(ref op, ref ins, bitness)) return EndsBlock(ref op, ref ins);
        if (TranslateSse(ref op, ref ins)) return false;
        if (TranslateX87(ref op, ref ins, index)) return false;
        // Everything else (system instructions, rare forms) runs through the slow handler, which sees the Iced
        // instruction, sets RIP itself and ends the block so mode changes take effect at once.
        op.H = &SystemOp;
        op.Imm2 = (ushort)index;
        op.Flags |= OpFlags.UsesInstr;
        return true;
    }

    private static bool EndsBlock(ref Op op, ref Instruction ins)
    {
        if ((op.Flags & (OpFlags.Rep | OpFlags.Repne)) != 0 && IsStringOp(ins.Mnemonic)) return true;
        return ins.FlowControl != FlowControl.Next;
    }

    private static bool IsStringOp(Mnemonic m) => m is Mnemonic.Movsb or Mnemonic.Movsw or Mnemonic.Movsd or Mnemonic.Movsq
        or Mnemonic.Stosb or Mnemonic.Stosw or Mnemonic.Stosd or Mnemonic.Stosq or Mnemonic.Lodsb or Mnemonic.Lodsw
        or Mnemonic.Lodsd or Mnemonic.Lodsq or Mnemonic.Cmpsb or Mnemonic.Cmpsw or Mnemonic.Cmpsd or Mnemonic.Cmpsq
        or Mnemonic.Scasb or Mnemonic.Scasw or Mnemonic.Scasd or Mnemonic.Scasq or Mnemonic.Insb or Mnemonic.Insw
        or Mnemonic.Insd or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd;
}
