using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Jit;

/// <summary>
/// The forms a Linux boot left to the interpreter most often after the first slice (SHARPVMM_JIT_STATS=2): bit
/// tests, byte swaps, sign extensions of the accumulator, SETcc to memory, CMPXCHG/XADD, LEAVE and PUSHFQ. Each
/// leaves registers, memory and flags exactly as its interpreter handler does; memory goes through the same inline
/// TLB probe as every other form, and a miss leaves before the op.
/// </summary>
internal sealed partial class BlockCompiler
{
    /// <summary>SETcc m8: the guest's flags back on the host, then the host's SETcc on the host address.</summary>
    private static void EmitSetccM(Assembler a, ref Op op, EmitState s, int index)
    {
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        SaveFlags(a, s);
        EffectiveAddress(a, ref op);
        Probe(a, true, 1, false, miss);
        a.mov(rdx, rax);
        RestoreFlags(a, s);
        Ins(a, Instruction.Create(HostCodes.SetForm(op.Cc), new MemoryOperand(Register.RDX)));
        MissExit(a, s, index, miss, done);
    }

    /// <summary>
    /// BT/BTS/BTR/BTC (op.Cc 0..3) on a register or memory: the host's instruction gives CF; every other flag keeps
    /// the guest's value (the host leaves OF/SF/AF/PF undefined), so they are saved in R9 before and put back with
    /// the new CF after. A register bit offset on memory addresses a bit string: the operand moves by the signed
    /// offset's whole operands first, and the host op gets the offset within the operand only.
    /// </summary>
    private static void EmitBitTest(Assembler a, ref Op op, OpForm form, EmitState s, int index)
    {
        int size = op.Size, bits = size * 8, log2Bits = size == 8 ? 6 : size == 4 ? 5 : 4;
        bool imm = op.Size2 != 0, locked = (op.Flags & OpFlags.Lock) != 0;
        MakeExact(a, s); // the bits kept must be the interpreter's (and a later fix-up must not read the new CF)
        a.lahf();
        a.seto(al);
        a.mov(r9d, eax);
        if (form == OpForm.BitTestR)
        {
            Ins(a, Instruction.Create(Load(size), Rax(size), Slot(op.Reg)));
            if (imm) Ins(a, Instruction.Create(BitImmForm(op.Cc, size), Rax(size), (int)(op.Imm & (ulong)(bits - 1))));
            else
            {
                Ins(a, Instruction.Create(Load(size), Rcx(size), Slot(op.Rm)));
                Ins(a, Instruction.Create(BitRegForm(op.Cc, size), Rax(size), Rcx(size)));
            }
            if (op.Cc != 0) Ins(a, Instruction.Create(Store(size == 4 ? 8 : size), Slot(op.Reg), size == 4 ? Register.RAX : Rax(size)));
            MergeCarry(a);
            return;
        }
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        EffectiveAddress(a, ref op);
        if (!imm)
        {
            Code sx = size switch { 8 => Code.Mov_r64_rm64, 4 => Code.Movsxd_r64_rm32, _ => Code.Movsx_r64_rm16 };
            Ins(a, Instruction.Create(sx, Register.R11, Slot(op.Rm)));
            a.mov(rdx, r11);
            a.sar(rdx, (byte)log2Bits);
            a.shl(rdx, (byte)(log2Bits - 3));
            a.add(rax, rdx);
            a.and(rax, __qword_ptr[rdi + 8 * X86Cpu.JitLinMaskSlot]);
        }
        Probe(a, op.Cc != 0, size, locked, miss);
        var host = new MemoryOperand(Register.RAX);
        Instruction i;
        if (imm) i = Instruction.Create(BitImmForm(op.Cc, size), host, (int)(op.Imm & (ulong)(bits - 1)));
        else
        {
            a.mov(ecx, r11d);
            a.and(ecx, bits - 1);
            i = Instruction.Create(BitRegForm(op.Cc, size), host, Rcx(size));
        }
        i.HasLockPrefix = locked;
        Ins(a, i);
        MergeCarry(a);
        MissExit(a, s, index, miss, done, flagsSavedAlways: true);
    }

    /// <summary>Host flags := those saved in R9 with CF replaced by the host's current CF. Clobbers RAX and CL.</summary>
    private static void MergeCarry(Assembler a)
    {
        a.setb(cl);
        a.mov(eax, r9d);
        a.and(ah, 0xFE);
        a.or(ah, cl);
        a.add(al, 0x7F);
        a.sahf();
    }

    private static Code BitImmForm(int kind, int size) => (kind, size) switch
    {
        (0, 2) => Code.Bt_rm16_imm8, (0, 4) => Code.Bt_rm32_imm8, (0, _) => Code.Bt_rm64_imm8,
        (1, 2) => Code.Bts_rm16_imm8, (1, 4) => Code.Bts_rm32_imm8, (1, _) => Code.Bts_rm64_imm8,
        (2, 2) => Code.Btr_rm16_imm8, (2, 4) => Code.Btr_rm32_imm8, (2, _) => Code.Btr_rm64_imm8,
        (_, 2) => Code.Btc_rm16_imm8, (_, 4) => Code.Btc_rm32_imm8, _ => Code.Btc_rm64_imm8,
    };

    private static Code BitRegForm(int kind, int size) => (kind, size) switch
    {
        (0, 2) => Code.Bt_rm16_r16, (0, 4) => Code.Bt_rm32_r32, (0, _) => Code.Bt_rm64_r64,
        (1, 2) => Code.Bts_rm16_r16, (1, 4) => Code.Bts_rm32_r32, (1, _) => Code.Bts_rm64_r64,
        (2, 2) => Code.Btr_rm16_r16, (2, 4) => Code.Btr_rm32_r32, (2, _) => Code.Btr_rm64_r64,
        (_, 2) => Code.Btc_rm16_r16, (_, 4) => Code.Btc_rm32_r32, _ => Code.Btc_rm64_r64,
    };

    /// <summary>BSWAP r32 (zero-extended, as every 32-bit write) or r64. No flags.</summary>
    private static void EmitBswap(Assembler a, ref Op op)
    {
        if (op.Size == 8)
        {
            a.mov(rax, __qword_ptr[rdi + 8 * op.Reg]);
            a.bswap(rax);
        }
        else
        {
            a.mov(eax, __dword_ptr[rdi + 8 * op.Reg]);
            a.bswap(eax);
        }
        a.mov(__qword_ptr[rdi + 8 * op.Reg], rax);
    }

    /// <summary>CBW/CWDE/CDQE: the accumulator's lower half sign-extended into it. No flags.</summary>
    private static void EmitCbw(Assembler a, ref Op op)
    {
        switch (op.Size)
        {
            case 2:
                a.movsx(ax, __byte_ptr[rdi]);
                a.mov(__word_ptr[rdi], ax);
                break;
            case 4:
                a.movsx(eax, __word_ptr[rdi]);
                a.mov(__qword_ptr[rdi], rax);
                break;
            default:
                a.movsxd(rax, __dword_ptr[rdi]);
                a.mov(__qword_ptr[rdi], rax);
                break;
        }
    }

    /// <summary>CWD/CDQ/CQO: DX/EDX/RDX := the accumulator's sign. No flags.</summary>
    private static void EmitCwd(Assembler a, ref Op op)
    {
        switch (op.Size)
        {
            case 2:
                a.mov(ax, __word_ptr[rdi]);
                a.cwd();
                a.mov(__word_ptr[rdi + 8 * 2], dx);
                break;
            case 4:
                a.mov(eax, __dword_ptr[rdi]);
                a.cdq();
                a.mov(__qword_ptr[rdi + 8 * 2], rdx);
                break;
            default:
                a.mov(rax, __qword_ptr[rdi]);
                a.cqo();
                a.mov(__qword_ptr[rdi + 8 * 2], rdx);
                break;
        }
    }

    /// <summary>
    /// [LOCK] CMPXCHG m, r and [LOCK] XADD m, r: the host's own instruction on the host address (LOCK on an aligned
    /// hit), whose flags are the guest's (CMP and ADD, all defined). CMPXCHG writes the accumulator only when the
    /// compare fails, zero-extended at 4 bytes, as the interpreter does; XADD returns the old value in the register.
    /// </summary>
    private static void EmitAtomic(Assembler a, ref Op op, OpForm form, EmitState s, int index)
    {
        int size = op.Size;
        bool locked = (op.Flags & OpFlags.Lock) != 0;
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        SaveFlags(a, s);
        EffectiveAddress(a, ref op);
        Probe(a, true, size, locked, miss);
        a.mov(rdx, rax);
        var host = new MemoryOperand(Register.RDX);
        Ins(a, Instruction.Create(Load(size), Rcx(size), Slot(op.Reg)));
        if (form == OpForm.CmpxchgM)
        {
            a.mov(rax, __qword_ptr[rdi]);
            Code c = size switch { 1 => Code.Cmpxchg_rm8_r8, 2 => Code.Cmpxchg_rm16_r16, 4 => Code.Cmpxchg_rm32_r32, _ => Code.Cmpxchg_rm64_r64 };
            var i = Instruction.Create(c, host, Rcx(size));
            i.HasLockPrefix = locked;
            Ins(a, i);
            a.je(done); // equal: the accumulator is not written
            if (size == 4) a.mov(eax, eax);
            Ins(a, Instruction.Create(Store(size == 4 ? 8 : size), Slot(0), size == 4 ? Register.RAX : Rax(size)));
        }
        else
        {
            Code c = size switch { 1 => Code.Xadd_rm8_r8, 2 => Code.Xadd_rm16_r16, 4 => Code.Xadd_rm32_r32, _ => Code.Xadd_rm64_r64 };
            var i = Instruction.Create(c, host, Rcx(size));
            i.HasLockPrefix = locked;
            Ins(a, i);
            Ins(a, Instruction.Create(Store(size == 4 ? 8 : size), Slot(op.Reg), size == 4 ? Register.RCX : Rcx(size)));
        }
        MissExit(a, s, index, miss, done);
    }

    /// <summary>LEAVE in 64-bit mode: RSP := RBP, then POP RBP through the read TLB. No flags.</summary>
    private static void EmitLeave(Assembler a, EmitState s, int index)
    {
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        SaveFlags(a, s);
        a.mov(rax, __qword_ptr[rdi + 8 * 5]);
        a.add(rax, __qword_ptr[rdi + 8 * (X86Cpu.SegBaseSlot + X86Cpu.SS)]);
        a.and(rax, __qword_ptr[rdi + 8 * X86Cpu.JitLinMaskSlot]);
        Probe(a, false, 8, false, miss);
        a.mov(rcx, __qword_ptr[rax]);
        a.mov(rdx, __qword_ptr[rdi + 8 * 5]);
        a.lea(rdx, __[rdx + 8]);
        a.mov(__qword_ptr[rdi + 8 * 4], rdx);
        a.mov(__qword_ptr[rdi + 8 * 5], rcx);
        RestoreFlags(a, s);
        MissExit(a, s, index, miss, done);
    }

    /// <summary>
    /// PUSHFQ: the guest's arithmetic flags (made exact first) with the other RFLAGS bits the dispatcher left in
    /// <see cref="X86Cpu.JitOtherFlagsSlot"/>, VM and RF read as 0, pushed through the write TLB.
    /// </summary>
    private static void EmitPushF(Assembler a, EmitState s, int index)
    {
        var miss = a.CreateLabel();
        var done = a.CreateLabel();
        MakeExact(a, s);
        a.pushfq();
        a.pop(r11);
        SaveFlags(a, s);
        a.and(r11d, (int)X86Cpu.ArithMask);
        a.or(r11, __qword_ptr[rdi + 8 * X86Cpu.JitOtherFlagsSlot]);
        a.and(r11d, 0xFCFFFF);
        StackAddress(a, -8);
        Probe(a, true, 8, false, miss);
        a.mov(__qword_ptr[rax], r11);
        a.mov(rdx, __qword_ptr[rdi + 8 * 4]);
        a.lea(rdx, __[rdx - 8]);
        a.mov(__qword_ptr[rdi + 8 * 4], rdx);
        RestoreFlags(a, s);
        MissExit(a, s, index, miss, done);
    }
}
