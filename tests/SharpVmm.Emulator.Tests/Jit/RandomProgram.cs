using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Jit;

/// <summary>
/// Random straight-line integer code with forward branches, mixing what the translator covers (ALU of every size,
/// MOV, MOVZX/MOVSX, LEA, Jcc, JMP) with what it does not (shifts, IMUL, PUSHFQ, stores), so translated prefixes
/// end at every kind of op and the interpreter picks up the state they leave.
/// </summary>
internal sealed class RandomProgram
{
    private static readonly AssemblerRegister64[] R64 = [rax, rbx, rcx, rdx, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15];
    private static readonly AssemblerRegister32[] R32 = [eax, ebx, ecx, edx, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d];
    private static readonly AssemblerRegister16[] R16 = [ax, bx, cx, dx, si, di, r8w, r9w, r10w, r11w, r12w, r13w, r14w, r15w];
    private static readonly AssemblerRegister8[] R8 = [al, bl, cl, dl, ah, bh, ch, dh];

    private static readonly ulong[] Edge =
    [
        0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue,
    ];

    /// <summary>Memory operands address RBP + 0..0x7FF (and a few that cross into the next page) inside the compared log area.</summary>
    public const ulong ScratchOffset = 0x2800;

    private readonly Random _rng;

    public RandomProgram(int seed) => _rng = new Random(seed);

    private ulong Value() => _rng.Next(3) == 0 ? Edge[_rng.Next(Edge.Length)] + (ulong)_rng.Next(-1, 2) : (ulong)_rng.NextInt64() ^ ((ulong)_rng.Next() << 40);

    /// <summary>Random registers and flags, then <paramref name="count"/> instructions; every so often all registers and RFLAGS go to <paramref name="log"/>.</summary>
    public void Emit(Assembler a, int count, ulong log, int checkpointEvery = 8)
    {
        foreach (var r in R64) a.mov(r, Value());
        a.mov(rbp, log + ScratchOffset); // RBP stays the base of the memory operands
        a.push((int)(_rng.Next() & 0x8D5));
        a.popfq();
        int slot = 0;
        var pending = new List<(Label Label, int At)>();
        for (int i = 0; i < count; i++)
        {
            for (int p = pending.Count - 1; p >= 0; p--)
            {
                if (pending[p].At != i) continue;
                var l = pending[p].Label;
                a.Label(ref l);
                a.nop(); // one label per instruction
                pending.RemoveAt(p);
            }
            if (i % checkpointEvery == checkpointEvery - 1 && slot < 64)
            {
                Checkpoint(a, log + (ulong)slot * 16 * 8);
                slot++;
                continue;
            }
            int k = _rng.Next(100);
            if (k < 8)
            {
                var l = a.CreateLabel();
                if (_rng.Next(4) == 0) a.jmp(l); else GuestCode.Jcc(a, _rng.Next(16), l);
                pending.Add((l, i + 1 + _rng.Next(4)));
            }
            else if (k < 93) Translatable(a);
            else Other(a, log);
        }
        foreach (var (label, _) in pending)
        {
            var l = label;
            a.Label(ref l);
            a.nop();
        }
        Checkpoint(a, log + 64UL * 16 * 8);
        a.hlt();
    }

    /// <summary>Stores every GPR but RSP, then RFLAGS (PUSHFQ; POP to memory).</summary>
    private static void Checkpoint(Assembler a, ulong at)
    {
        for (int i = 0; i < R64.Length; i++) a.mov(__qword_ptr[at + (ulong)i * 8], R64[i]);
        a.pushfq();
        a.pop(__qword_ptr[at + 14 * 8]);
    }

    private void Translatable(Assembler a)
    {
        int size = _rng.Next(4) switch { 0 => 1, 1 => 2, 2 => 4, _ => 8 };
        int d = _rng.Next(R64.Length), s = _rng.Next(R64.Length), d8 = _rng.Next(R8.Length), s8 = _rng.Next(R8.Length);
        ulong v = Value();
        switch (_rng.Next(16))
        {
            case 11:
                Multiply(a, size, d, s, v);
                break;
            case 12:
                ShiftByCl(a, d);
                break;
            case 13:
                ReadModifyWrite(a, size, d, d8, v);
                break;
            case 14:
                Stack(a, d, v);
                break;
            case 10:
                CondMove(a, size, d, s, d8);
                break;
            case 8:
            case 9:
                Memory(a, size, d, d8, v);
                break;
            case 0:
            case 1:
            {
                int op = _rng.Next(9);
                bool imm = _rng.Next(2) == 0;
                switch (size)
                {
                    case 1: if (imm) Bin8I(a, op, R8[d8], (byte)v); else Bin8(a, op, R8[d8], R8[s8]); break;
                    case 2: if (imm) Bin16I(a, op, R16[d], (short)v); else Bin16(a, op, R16[d], R16[s]); break;
                    case 4: if (imm) Bin32I(a, op, R32[d], (int)v); else Bin32(a, op, R32[d], R32[s]); break;
                    default: if (imm) Bin64I(a, op, R64[d], (int)v); else Bin64(a, op, R64[d], R64[s]); break;
                }
                break;
            }
            case 2:
            {
                int op = _rng.Next(4);
                switch (size)
                {
                    case 1: Un(a, op, R8[d8]); break;
                    case 2: Un(a, op, R16[d]); break;
                    case 4: Un(a, op, R32[d]); break;
                    default: Un(a, op, R64[d]); break;
                }
                break;
            }
            case 3:
                switch (size)
                {
                    case 1: if (_rng.Next(2) == 0) a.mov(R8[d8], R8[s8]); else a.mov(R8[d8], (byte)v); break;
                    case 2: if (_rng.Next(2) == 0) a.mov(R16[d], R16[s]); else a.mov(R16[d], (short)v); break;
                    case 4: if (_rng.Next(2) == 0) a.mov(R32[d], R32[s]); else a.mov(R32[d], (int)v); break;
                    default: if (_rng.Next(2) == 0) a.mov(R64[d], R64[s]); else a.mov(R64[d], v); break;
                }
                break;
            case 4:
            {
                var src8 = R8[_rng.Next(4)]; // AL..BL: no REX conflict with any destination
                switch (_rng.Next(8))
                {
                    case 0: a.movzx(R32[d], src8); break;
                    case 1: a.movsx(R32[d], src8); break;
                    case 2: a.movzx(R64[d], R16[s]); break;
                    case 3: a.movsx(R64[d], R16[s]); break;
                    case 4: a.movsxd(R64[d], R32[s]); break;
                    case 5: a.movsx(R16[d], src8); break;
                    case 6: a.movzx(R16[d], src8); break;
                    default: a.movsx(R64[d], src8); break;
                }
                break;
            }
            case 5:
            {
                int scale = 1 << _rng.Next(4);
                int disp = _rng.Next(3) == 0 ? 0 : (int)v;
                switch (size)
                {
                    case 1:
                    case 2: a.lea(R16[d], __[R64[s] + R64[_rng.Next(R64.Length)] * scale + disp]); break;
                    case 4: a.lea(R32[d], __[R64[s] + R64[_rng.Next(R64.Length)] * scale + disp]); break;
                    default: a.lea(R64[d], __[R64[s] + R64[_rng.Next(R64.Length)] * scale + disp]); break;
                }
                break;
            }
            case 6: a.lea(R32[d], __dword_ptr[R32[s] + (int)v]); break; // 32-bit address size
            case 7:
            {
                byte n = (byte)(_rng.Next(3) == 0 ? 1 : _rng.Next(1, 64));
                switch (_rng.Next(6))
                {
                    case 0: a.shl(R64[d], n); break;
                    case 1: a.shr(R64[d], n); break;
                    case 2: a.sar(R64[d], n); break;
                    case 3: a.shl(R32[d], (byte)(n & 31)); break;
                    case 4: a.shr(R32[d], (byte)(n & 31)); break;
                    default: a.sar(R32[d], (byte)(n & 31)); break;
                }
                break;
            }
            default:
                DataForms(a, size, d, s, v);
                break;
        }
    }

    /// <summary>
    /// Bit tests of registers and memory (immediate and register offsets, some LOCK'ed), BSWAP, CBW/CWD and kin,
    /// SETcc to memory, CMPXCHG/XADD (matching and not, some LOCK'ed), DIV by memory, PUSHFQ, CALL/JMP through
    /// memory, LEAVE and 16-bit shifts.
    /// </summary>
    private void DataForms(Assembler a, int size, int d, int s, ulong v)
    {
        if (size == 1) size = 8;
        int off = 0x100 + (_rng.Next(0x400) & ~(_rng.Next(2) == 0 ? 7 : 0));
        var mem = new MemoryOperand(Register.RBP, off);
        Register Reg(int i, int sz) => sz switch { 1 => R8[i % R8.Length], 2 => R16[i], 4 => R32[i], _ => (Register)R64[i] };
        int kind = _rng.Next(4);
        switch (_rng.Next(16))
        {
            case 0:
                a.AddInstruction(Instruction.Create(BitCode(kind, size, true), Reg(d, size), _rng.Next(256)));
                break;
            case 1:
                a.AddInstruction(Instruction.Create(BitCode(kind, size, false), Reg(d, size), Reg(s, size)));
                break;
            case 2:
            {
                var ins = Instruction.Create(BitCode(kind, size, true), mem, _rng.Next(256));
                ins.HasLockPrefix = kind != 0 && size >= 4 && _rng.Next(3) == 0;
                a.AddInstruction(ins);
                break;
            }
            case 3:
            {
                // A signed bit offset within -256..1023: the operand moves by up to -32..+128 bytes, inside the log.
                int bit = _rng.Next(-256, 1024);
                if (s == d) s = (s + 1) % R64.Length;
                if (size == 2) a.mov(R16[s], (short)bit); else a.mov(R64[s], bit);
                var ins = Instruction.Create(BitCode(kind, size, false), mem, Reg(s, size));
                ins.HasLockPrefix = kind != 0 && size >= 4 && _rng.Next(3) == 0;
                a.AddInstruction(ins);
                break;
            }
            case 4:
                if (size == 8) a.bswap(R64[d]); else a.bswap(R32[d]);
                break;
            case 5:
                switch (_rng.Next(6)) { case 0: a.cbw(); break; case 1: a.cwde(); break; case 2: a.cdqe(); break; case 3: a.cwd(); break; case 4: a.cdq(); break; default: a.cqo(); break; }
                break;
            case 6:
                a.AddInstruction(Instruction.Create(Emulator.Jit.HostCodes.SetForm(_rng.Next(16)), mem));
                break;
            case 7:
            {
                if (_rng.Next(2) == 0) a.AddInstruction(Instruction.Create(size switch { 2 => Code.Mov_r16_rm16, 4 => Code.Mov_r32_rm32, _ => Code.Mov_r64_rm64 }, Reg(0, size), mem));
                var ins = Instruction.Create(size switch { 2 => Code.Cmpxchg_rm16_r16, 4 => Code.Cmpxchg_rm32_r32, _ => Code.Cmpxchg_rm64_r64 }, mem, Reg(d, size));
                ins.HasLockPrefix = _rng.Next(2) == 0 && (off & 7) == 0;
                a.AddInstruction(ins);
                break;
            }
            case 8:
            {
                var ins = Instruction.Create(size switch { 2 => Code.Xadd_rm16_r16, 4 => Code.Xadd_rm32_r32, _ => Code.Xadd_rm64_r64 }, mem, Reg(d, size));
                ins.HasLockPrefix = _rng.Next(2) == 0 && (off & 7) == 0;
                a.AddInstruction(ins);
                break;
            }
            case 9:
                // Never #DE: EDX/RDX 0 and a divisor of at least 1.
                a.xor(edx, edx);
                if (size == 8) { a.mov(__qword_ptr[rbp + off], (int)(v | 1)); a.div(__qword_ptr[rbp + off]); }
                else { a.mov(__dword_ptr[rbp + off], (int)(v | 1)); a.div(__dword_ptr[rbp + off]); }
                break;
            case 10:
                a.pushfq();
                a.pop(R64[d]);
                break;
            case 11:
            {
                var l = a.CreateLabel();
                a.lea(R64[d], __[l]);
                a.mov(__qword_ptr[rbp + off], R64[d]);
                if (_rng.Next(2) == 0) { a.call(__qword_ptr[rbp + off]); a.Label(ref l); a.pop(R64[d]); }
                else { a.jmp(__qword_ptr[rbp + off]); a.Label(ref l); a.nop(); }
                break;
            }
            case 12:
                a.push(rbp);
                a.mov(rbp, rsp);
                if (_rng.Next(2) == 0) a.push(R64[d]);
                a.leave();
                break;
            case 14:
            {
                // 8- and 16-bit shifts and rotates by CL (any count, some of the width or more) or by an immediate.
                if (_rng.Next(3) == 0) a.mov(cl, (byte)_rng.Next(0, 40));
                var r = _rng.Next(2) == 0 ? (Register)R8[_rng.Next(R8.Length)] : R16[d];
                int kindNarrow = _rng.Next(5); // ROL ROR SHL SHR SAR
                bool byCl = _rng.Next(2) == 0;
                Code code = (kindNarrow, r.GetSize(), byCl) switch
                {
                    (0, 1, true) => Code.Rol_rm8_CL, (1, 1, true) => Code.Ror_rm8_CL, (2, 1, true) => Code.Shl_rm8_CL, (3, 1, true) => Code.Shr_rm8_CL, (_, 1, true) => Code.Sar_rm8_CL,
                    (0, 1, false) => Code.Rol_rm8_imm8, (1, 1, false) => Code.Ror_rm8_imm8, (2, 1, false) => Code.Shl_rm8_imm8, (3, 1, false) => Code.Shr_rm8_imm8, (_, 1, false) => Code.Sar_rm8_imm8,
                    (0, _, true) => Code.Rol_rm16_CL, (1, _, true) => Code.Ror_rm16_CL, (2, _, true) => Code.Shl_rm16_CL, (3, _, true) => Code.Shr_rm16_CL, (_, _, true) => Code.Sar_rm16_CL,
                    (0, _, false) => Code.Rol_rm16_imm8, (1, _, false) => Code.Ror_rm16_imm8, (2, _, false) => Code.Shl_rm16_imm8, (3, _, false) => Code.Shr_rm16_imm8, _ => Code.Sar_rm16_imm8,
                };
                if (byCl) a.AddInstruction(Instruction.Create(code, r, Register.CL));
                else a.AddInstruction(Instruction.Create(code, r, _rng.Next(0, 40)));
                break;
            }
            case 15:
            {
                var cmov = size switch { 2 => Code.Cmovo_r16_rm16, 4 => Code.Cmovo_r32_rm32, _ => Code.Cmovo_r64_rm64 } + 3 * _rng.Next(16);
                a.AddInstruction(Instruction.Create(cmov, Reg(d, size), mem));
                break;
            }
            default:
            {
                byte n = (byte)_rng.Next(1, 16);
                switch (_rng.Next(3)) { case 0: a.shl(R16[d], n); break; case 1: a.shr(R16[d], n); break; default: a.sar(R16[d], n); break; }
                break;
            }
        }
    }

    private static Code BitCode(int kind, int size, bool imm) => (imm, size) switch
    {
        (true, 2) => kind switch { 0 => Code.Bt_rm16_imm8, 1 => Code.Bts_rm16_imm8, 2 => Code.Btr_rm16_imm8, _ => Code.Btc_rm16_imm8 },
        (true, 4) => kind switch { 0 => Code.Bt_rm32_imm8, 1 => Code.Bts_rm32_imm8, 2 => Code.Btr_rm32_imm8, _ => Code.Btc_rm32_imm8 },
        (true, _) => kind switch { 0 => Code.Bt_rm64_imm8, 1 => Code.Bts_rm64_imm8, 2 => Code.Btr_rm64_imm8, _ => Code.Btc_rm64_imm8 },
        (false, 2) => kind switch { 0 => Code.Bt_rm16_r16, 1 => Code.Bts_rm16_r16, 2 => Code.Btr_rm16_r16, _ => Code.Btc_rm16_r16 },
        (false, 4) => kind switch { 0 => Code.Bt_rm32_r32, 1 => Code.Bts_rm32_r32, 2 => Code.Btr_rm32_r32, _ => Code.Btc_rm32_r32 },
        _ => kind switch { 0 => Code.Bt_rm64_r64, 1 => Code.Bts_rm64_r64, 2 => Code.Btr_rm64_r64, _ => Code.Btc_rm64_r64 },
    };

    private void Multiply(Assembler a, int size, int d, int s, ulong v)
    {
        int off = _rng.Next(0x800 - 8);
        switch ((size, _rng.Next(3)))
        {
            case (1 or 2, 0): a.imul(R16[d], R16[s]); break;
            case (1 or 2, 1): a.imul(R16[d], R16[s], (short)v); break;
            case (1 or 2, _): a.imul(R16[d], __word_ptr[rbp + off]); break;
            case (4, 0): a.imul(R32[d], R32[s]); break;
            case (4, 1): a.imul(R32[d], R32[s], (int)v); break;
            case (4, _): a.imul(R32[d], __dword_ptr[rbp + off], (int)v); break;
            case (_, 0): a.imul(R64[d], R64[s]); break;
            case (_, 1): a.imul(R64[d], R64[s], _rng.Next(2) == 0 ? (int)v : (sbyte)v); break;
            default: a.imul(R64[d], __qword_ptr[rbp + off]); break;
        }
    }

    private void ShiftByCl(Assembler a, int d)
    {
        if (_rng.Next(4) == 0) a.mov(cl, (byte)(_rng.Next(3) == 0 ? _rng.Next(0, 3) * 32 : _rng.Next(256)));
        switch (_rng.Next(10))
        {
            case 6: a.rol(R64[d], cl); break;
            case 7: a.ror(R32[d], cl); break;
            case 8: if (_rng.Next(2) == 0) a.rol(R32[d], (byte)_rng.Next(32)); else a.ror(R64[d], (byte)_rng.Next(64)); break;
            case 9: a.ror(R64[d], cl); break;
            case 0: a.shl(R64[d], cl); break;
            case 1: a.shr(R64[d], cl); break;
            case 2: a.sar(R64[d], cl); break;
            case 3: a.shl(R32[d], cl); break;
            case 4: a.shr(R32[d], cl); break;
            default: a.sar(R32[d], cl); break;
        }
    }

    /// <summary>ALU ops with a memory destination (some LOCK'ed, aligned or not), CMP/TEST of memory, INC/DEC/NOT/NEG of memory.</summary>
    private void ReadModifyWrite(Assembler a, int size, int d, int d8, ulong v)
    {
        int off = _rng.Next(8) == 0 ? 0x800 - _rng.Next(1, 8) : _rng.Next(0x800 - 8) & ~(_rng.Next(2) == 0 ? 7 : 0);
        var m = size switch { 1 => __byte_ptr[rbp + off], 2 => __word_ptr[rbp + off], 4 => __dword_ptr[rbp + off], _ => __qword_ptr[rbp + off] };
        Register reg = size switch { 1 => R8[d8], 2 => R16[d], 4 => R32[d], _ => (Register)R64[d] };
        int op = _rng.Next(11);
        bool locked = op < 7 && _rng.Next(4) == 0;
        var mem = new MemoryOperand(Register.RBP, off);
        Instruction ins;
        if (op < 9)
        {
            bool imm = _rng.Next(2) == 0;
            var aluOp = (Emulator.Jit.AluOp)op;
            if (imm)
            {
                int iv = size switch { 1 => (byte)v, 2 => (ushort)v, _ => (int)v };
                ins = Instruction.Create(Emulator.Jit.HostCodes.ImmForm(aluOp, size), mem, iv);
            }
            else ins = Instruction.Create(Emulator.Jit.HostCodes.RegForm(aluOp, size), mem, reg);
        }
        else ins = Instruction.Create(Emulator.Jit.HostCodes.UnaryForm((Emulator.Jit.AluOp)(9 + _rng.Next(4)), size), mem);
        if (op >= 9 && _rng.Next(4) == 0) locked = true;
        ins.HasLockPrefix = locked;
        a.AddInstruction(ins);
        _ = m;
    }

    /// <summary>PUSH/POP of registers and immediates, CALL to the next instruction, RET to a label pushed first, JMP/CALL through a register.</summary>
    private void Stack(Assembler a, int d, ulong v)
    {
        switch (_rng.Next(7))
        {
            case 0: a.push(R64[d]); break;
            case 1: a.push((int)v); break;
            case 2: a.pop(R64[d]); break;
            case 3:
            {
                var l = a.CreateLabel();
                a.call(l);
                a.Label(ref l);
                a.pop(R64[d]);
                break;
            }
            case 4:
            {
                var l = a.CreateLabel();
                a.lea(R64[d], __[l]);
                a.push(R64[d]);
                if (_rng.Next(2) == 0) a.ret(); else { a.ret(8); }
                a.Label(ref l);
                if (_rng.Next(2) == 0) a.nop(); else a.push(R64[d]); // RET 8 dropped one more slot
                break;
            }
            case 5:
            {
                var l = a.CreateLabel();
                a.lea(R64[d], __[l]);
                a.jmp(R64[d]);
                a.Label(ref l);
                a.nop();
                break;
            }
            default:
            {
                var l = a.CreateLabel();
                a.lea(R64[d], __[l]);
                a.call(R64[d]);
                a.Label(ref l);
                a.pop(R64[d]);
                break;
            }
        }
    }

    private void CondMove(Assembler a, int size, int d, int s, int d8)
    {
        int cc = _rng.Next(16);
        if (size == 1)
        {
            var r = R8[d8];
            switch (cc)
            {
                case 0: a.seto(r); break; case 1: a.setno(r); break; case 2: a.setb(r); break; case 3: a.setae(r); break;
                case 4: a.sete(r); break; case 5: a.setne(r); break; case 6: a.setbe(r); break; case 7: a.seta(r); break;
                case 8: a.sets(r); break; case 9: a.setns(r); break; case 10: a.setp(r); break; case 11: a.setnp(r); break;
                case 12: a.setl(r); break; case 13: a.setge(r); break; case 14: a.setle(r); break; default: a.setg(r); break;
            }
            return;
        }
        var code = (size, cc) switch
        {
            (2, _) => Code.Cmovo_r16_rm16 + 3 * cc,
            (4, _) => Code.Cmovo_r32_rm32 + 3 * cc,
            _ => Code.Cmovo_r64_rm64 + 3 * cc,
        };
        Register Reg(int i, int sz) => sz switch { 2 => R16[i], 4 => R32[i], _ => (Register)R64[i] };
        var ins = Instruction.Create(code, Reg(d, size), Reg(s, size));
        a.AddInstruction(ins);
    }

    private void Memory(Assembler a, int size, int d, int d8, ulong v)
    {
        int off = _rng.Next(8) == 0 ? 0x800 - _rng.Next(1, 8) : _rng.Next(0x800 - 8) & ~(_rng.Next(2) == 0 ? 7 : 0);
        var m = __[rbp + off];
        switch (_rng.Next(7))
        {
            case 0:
            case 1:
                switch (size)
                {
                    case 1: a.mov(R8[d8], __byte_ptr[rbp + off]); break;
                    case 2: a.mov(R16[d], __word_ptr[rbp + off]); break;
                    case 4: a.mov(R32[d], __dword_ptr[rbp + off]); break;
                    default: a.mov(R64[d], __qword_ptr[rbp + off]); break;
                }
                break;
            case 2:
            case 3:
                switch (size)
                {
                    case 1: a.mov(__byte_ptr[rbp + off], R8[d8]); break;
                    case 2: a.mov(__word_ptr[rbp + off], R16[d]); break;
                    case 4: a.mov(__dword_ptr[rbp + off], R32[d]); break;
                    default: a.mov(__qword_ptr[rbp + off], R64[d]); break;
                }
                break;
            case 4:
                switch (size)
                {
                    case 1: a.mov(__byte_ptr[rbp + off], (byte)v); break;
                    case 2: a.mov(__word_ptr[rbp + off], (ushort)v); break;
                    case 4: a.mov(__dword_ptr[rbp + off], (int)v); break;
                    default: a.mov(__qword_ptr[rbp + off], (int)v); break;
                }
                break;
            case 5:
                switch (_rng.Next(4))
                {
                    case 0: a.movzx(R32[d], __byte_ptr[rbp + off]); break;
                    case 1: a.movsx(R64[d], __word_ptr[rbp + off]); break;
                    case 2: a.movsxd(R64[d], __dword_ptr[rbp + off]); break;
                    default: a.movsx(R16[d], __byte_ptr[rbp + off]); break;
                }
                break;
            default:
            {
                int op = _rng.Next(9);
                switch (size)
                {
                    case 1: BinM(a, op, R8[d8], __byte_ptr[rbp + off]); break;
                    case 2: BinM(a, op, R16[d], __word_ptr[rbp + off]); break;
                    case 4: BinM(a, op, R32[d], __dword_ptr[rbp + off]); break;
                    default: BinM(a, op, R64[d], __qword_ptr[rbp + off]); break;
                }
                break;
            }
        }
        _ = m;
    }

    private static void BinM(Assembler a, int op, AssemblerRegister8 d, AssemblerMemoryOperand m)
    {
        switch (op) { case 0: a.add(d, m); break; case 1: a.or(d, m); break; case 2: a.adc(d, m); break; case 3: a.sbb(d, m); break; case 4: a.and(d, m); break; case 5: a.sub(d, m); break; case 6: a.xor(d, m); break; case 7: a.cmp(d, m); break; default: a.test(m, d); break; }
    }

    private static void BinM(Assembler a, int op, AssemblerRegister16 d, AssemblerMemoryOperand m)
    {
        switch (op) { case 0: a.add(d, m); break; case 1: a.or(d, m); break; case 2: a.adc(d, m); break; case 3: a.sbb(d, m); break; case 4: a.and(d, m); break; case 5: a.sub(d, m); break; case 6: a.xor(d, m); break; case 7: a.cmp(d, m); break; default: a.test(m, d); break; }
    }

    private static void BinM(Assembler a, int op, AssemblerRegister32 d, AssemblerMemoryOperand m)
    {
        switch (op) { case 0: a.add(d, m); break; case 1: a.or(d, m); break; case 2: a.adc(d, m); break; case 3: a.sbb(d, m); break; case 4: a.and(d, m); break; case 5: a.sub(d, m); break; case 6: a.xor(d, m); break; case 7: a.cmp(d, m); break; default: a.test(m, d); break; }
    }

    private static void BinM(Assembler a, int op, AssemblerRegister64 d, AssemblerMemoryOperand m)
    {
        switch (op) { case 0: a.add(d, m); break; case 1: a.or(d, m); break; case 2: a.adc(d, m); break; case 3: a.sbb(d, m); break; case 4: a.and(d, m); break; case 5: a.sub(d, m); break; case 6: a.xor(d, m); break; case 7: a.cmp(d, m); break; default: a.test(m, d); break; }
    }

    private void Other(Assembler a, ulong log)
    {
        int d = _rng.Next(R64.Length);
        switch (_rng.Next(5))
        {
            case 0: a.rol(R64[d], (byte)_rng.Next(1, 64)); break;
            case 1: a.imul(R32[d], R32[_rng.Next(R64.Length)]); break;
            case 2: a.pushfq(); a.pop(R64[d]); break;
            case 3: a.mov(__qword_ptr[log + 0x3000 + (ulong)_rng.Next(64) * 8], R64[d]); break;
            default: a.sar(R32[d], 1); break;
        }
    }


    private static void Bin8(Assembler a, int op, AssemblerRegister8 d, AssemblerRegister8 s)
    {
        switch (op) { case 0: a.add(d, s); break; case 1: a.or(d, s); break; case 2: a.adc(d, s); break; case 3: a.sbb(d, s); break; case 4: a.and(d, s); break; case 5: a.sub(d, s); break; case 6: a.xor(d, s); break; case 7: a.cmp(d, s); break; default: a.test(d, s); break; }
    }

    private static void Bin8I(Assembler a, int op, AssemblerRegister8 d, byte s)
    {
        switch (op) { case 0: a.add(d, s); break; case 1: a.or(d, s); break; case 2: a.adc(d, s); break; case 3: a.sbb(d, s); break; case 4: a.and(d, s); break; case 5: a.sub(d, s); break; case 6: a.xor(d, s); break; case 7: a.cmp(d, s); break; default: a.test(d, s); break; }
    }

    private static void Bin16(Assembler a, int op, AssemblerRegister16 d, AssemblerRegister16 s)
    {
        switch (op) { case 0: a.add(d, s); break; case 1: a.or(d, s); break; case 2: a.adc(d, s); break; case 3: a.sbb(d, s); break; case 4: a.and(d, s); break; case 5: a.sub(d, s); break; case 6: a.xor(d, s); break; case 7: a.cmp(d, s); break; default: a.test(d, s); break; }
    }

    private static void Bin16I(Assembler a, int op, AssemblerRegister16 d, short s)
    {
        switch (op) { case 0: a.add(d, s); break; case 1: a.or(d, s); break; case 2: a.adc(d, s); break; case 3: a.sbb(d, s); break; case 4: a.and(d, s); break; case 5: a.sub(d, s); break; case 6: a.xor(d, s); break; case 7: a.cmp(d, s); break; default: a.test(d, s); break; }
    }

    private static void Bin32(Assembler a, int op, AssemblerRegister32 d, AssemblerRegister32 s)
    {
        switch (op) { case 0: a.add(d, s); break; case 1: a.or(d, s); break; case 2: a.adc(d, s); break; case 3: a.sbb(d, s); break; case 4: a.and(d, s); break; case 5: a.sub(d, s); break; case 6: a.xor(d, s); break; case 7: a.cmp(d, s); break; default: a.test(d, s); break; }
    }

    private static void Bin32I(Assembler a, int op, AssemblerRegister32 d, int s)
    {
        switch (op) { case 0: a.add(d, s); break; case 1: a.or(d, s); break; case 2: a.adc(d, s); break; case 3: a.sbb(d, s); break; case 4: a.and(d, s); break; case 5: a.sub(d, s); break; case 6: a.xor(d, s); break; case 7: a.cmp(d, s); break; default: a.test(d, s); break; }
    }

    private static void Bin64(Assembler a, int op, AssemblerRegister64 d, AssemblerRegister64 s)
    {
        switch (op) { case 0: a.add(d, s); break; case 1: a.or(d, s); break; case 2: a.adc(d, s); break; case 3: a.sbb(d, s); break; case 4: a.and(d, s); break; case 5: a.sub(d, s); break; case 6: a.xor(d, s); break; case 7: a.cmp(d, s); break; default: a.test(d, s); break; }
    }

    private static void Bin64I(Assembler a, int op, AssemblerRegister64 d, int s)
    {
        switch (op) { case 0: a.add(d, s); break; case 1: a.or(d, s); break; case 2: a.adc(d, s); break; case 3: a.sbb(d, s); break; case 4: a.and(d, s); break; case 5: a.sub(d, s); break; case 6: a.xor(d, s); break; case 7: a.cmp(d, s); break; default: a.test(d, s); break; }
    }

    private static void Un(Assembler a, int op, AssemblerRegister8 r) { switch (op) { case 0: a.not(r); break; case 1: a.neg(r); break; case 2: a.inc(r); break; default: a.dec(r); break; } }
    private static void Un(Assembler a, int op, AssemblerRegister16 r) { switch (op) { case 0: a.not(r); break; case 1: a.neg(r); break; case 2: a.inc(r); break; default: a.dec(r); break; } }
    private static void Un(Assembler a, int op, AssemblerRegister32 r) { switch (op) { case 0: a.not(r); break; case 1: a.neg(r); break; case 2: a.inc(r); break; default: a.dec(r); break; } }
    private static void Un(Assembler a, int op, AssemblerRegister64 r) { switch (op) { case 0: a.not(r); break; case 1: a.neg(r); break; case 2: a.inc(r); break; default: a.dec(r); break; } }
}
