using Iced.Intel;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// Fills an instruction's operands from its opcode description (Iced's <see cref="OpCodeInfo"/>): random
/// registers, memory operands in every 64-bit addressing form aimed into the data buffer, and immediates
/// from the edge-value pools. Anything the result must not do (write a protected register, fault) is checked
/// later by <see cref="CaseBuilder"/>, which then asks for another candidate.
/// </summary>
internal static class OperandFactory
{
    private static readonly Register[] Gpr8 =
        [Register.AL, Register.CL, Register.DL, Register.BL, Register.SPL, Register.BPL, Register.SIL, Register.DIL,
         Register.R8L, Register.R9L, Register.R10L, Register.R11L, Register.R12L, Register.R13L, Register.R14L, Register.R15L];

    /// <summary>True when every operand of <paramref name="code"/> is a kind this factory can fill.</summary>
    public static bool Supports(Code code)
    {
        var op = code.ToOpCode();
        for (int i = 0; i < op.OpCount; i++)
            if (!Supported(op.GetOpKind(i))) return false;
        return true;
    }

    private static bool Supported(OpCodeOperandKind k) => k switch
    {
        OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r64_or_mem
            or OpCodeOperandKind.xmm_or_mem or OpCodeOperandKind.mem or OpCodeOperandKind.mem_offs
            or OpCodeOperandKind.r8_reg or OpCodeOperandKind.r8_opcode
            or OpCodeOperandKind.r16_reg or OpCodeOperandKind.r16_rm or OpCodeOperandKind.r16_opcode
            or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r32_opcode
            or OpCodeOperandKind.r64_reg or OpCodeOperandKind.r64_rm or OpCodeOperandKind.r64_opcode
            or OpCodeOperandKind.r32_vvvv or OpCodeOperandKind.r64_vvvv
            or OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm
            or OpCodeOperandKind.al or OpCodeOperandKind.cl or OpCodeOperandKind.ax or OpCodeOperandKind.eax or OpCodeOperandKind.rax
            or OpCodeOperandKind.imm8 or OpCodeOperandKind.imm8_const_1 or OpCodeOperandKind.imm8sex16 or OpCodeOperandKind.imm8sex32
            or OpCodeOperandKind.imm8sex64 or OpCodeOperandKind.imm16 or OpCodeOperandKind.imm32 or OpCodeOperandKind.imm32sex64
            or OpCodeOperandKind.imm64 => true,
        _ => false,
    };

    public static Register Gpr(DiffRandom r, int bytes)
    {
        int i;
        do i = r.Next(16); while (i == 4); // never RSP: the sequence's stack pointer stays put
        return bytes switch
        {
            1 => i < 4 && r.Chance(20) ? Register.AH + i : Gpr8[i],
            2 => Register.AX + i,
            4 => Register.EAX + i,
            _ => Register.RAX + i,
        };
    }

    public static Register Xmm(DiffRandom r) => Register.XMM0 + r.Next(16);

    /// <summary>Builds <paramref name="code"/> with random operands. <paramref name="imm"/> overrides immediates (operand index → value).</summary>
    public static Instruction Build(CaseContext ctx, Code code, Func<int, ulong?>? imm = null)
    {
        var r = ctx.Rng;
        var op = code.ToOpCode();
        var ins = new Instruction { Code = code };
        int memSize = op.MemorySize.GetSize();
        for (int i = 0; i < op.OpCount; i++)
        {
            var k = op.GetOpKind(i);
            switch (k)
            {
                case OpCodeOperandKind.r8_or_mem: RegOrMem(ctx, ref ins, i, 1, memSize, code); break;
                case OpCodeOperandKind.r16_or_mem: RegOrMem(ctx, ref ins, i, 2, memSize, code); break;
                case OpCodeOperandKind.r32_or_mem: RegOrMem(ctx, ref ins, i, 4, memSize, code); break;
                case OpCodeOperandKind.r64_or_mem: RegOrMem(ctx, ref ins, i, 8, memSize, code); break;
                case OpCodeOperandKind.xmm_or_mem:
                    if (r.Chance(50)) SetReg(ref ins, i, Xmm(r));
                    else SetMemory(ctx, ref ins, i, memSize, AlignmentOf(code, memSize));
                    break;
                case OpCodeOperandKind.mem: SetMemory(ctx, ref ins, i, memSize, AlignmentOf(code, memSize)); break;
                case OpCodeOperandKind.mem_offs:
                    ins.SetOpKind(i, OpKind.Memory);
                    ins.MemoryDisplSize = 8;
                    ins.MemoryDisplacement64 = Target(ctx, Math.Max(memSize, 1), 1);
                    break;
                case OpCodeOperandKind.r8_reg or OpCodeOperandKind.r8_opcode: SetReg(ref ins, i, Gpr(r, 1)); break;
                case OpCodeOperandKind.r16_reg or OpCodeOperandKind.r16_rm or OpCodeOperandKind.r16_opcode: SetReg(ref ins, i, Gpr(r, 2)); break;
                case OpCodeOperandKind.r32_reg or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r32_opcode or OpCodeOperandKind.r32_vvvv: SetReg(ref ins, i, Gpr(r, 4)); break;
                case OpCodeOperandKind.r64_reg or OpCodeOperandKind.r64_rm or OpCodeOperandKind.r64_opcode or OpCodeOperandKind.r64_vvvv: SetReg(ref ins, i, Gpr(r, 8)); break;
                case OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm: SetReg(ref ins, i, Xmm(r)); break;
                case OpCodeOperandKind.al: SetReg(ref ins, i, Register.AL); break;
                case OpCodeOperandKind.cl: SetReg(ref ins, i, Register.CL); break;
                case OpCodeOperandKind.ax: SetReg(ref ins, i, Register.AX); break;
                case OpCodeOperandKind.eax: SetReg(ref ins, i, Register.EAX); break;
                case OpCodeOperandKind.rax: SetReg(ref ins, i, Register.RAX); break;
                case OpCodeOperandKind.imm8_const_1: ins.SetOpKind(i, OpKind.Immediate8); ins.Immediate8 = 1; break;
                case OpCodeOperandKind.imm8: SetImm(ref ins, i, OpKind.Immediate8, imm?.Invoke(i) ?? EdgeValues.Of(r, 8)); break;
                case OpCodeOperandKind.imm8sex16: SetImm(ref ins, i, OpKind.Immediate8to16, imm?.Invoke(i) ?? EdgeValues.Of(r, 8)); break;
                case OpCodeOperandKind.imm8sex32: SetImm(ref ins, i, OpKind.Immediate8to32, imm?.Invoke(i) ?? EdgeValues.Of(r, 8)); break;
                case OpCodeOperandKind.imm8sex64: SetImm(ref ins, i, OpKind.Immediate8to64, imm?.Invoke(i) ?? EdgeValues.Of(r, 8)); break;
                case OpCodeOperandKind.imm16: SetImm(ref ins, i, OpKind.Immediate16, imm?.Invoke(i) ?? EdgeValues.Of(r, 16)); break;
                case OpCodeOperandKind.imm32: SetImm(ref ins, i, OpKind.Immediate32, imm?.Invoke(i) ?? EdgeValues.Of(r, 32)); break;
                case OpCodeOperandKind.imm32sex64: SetImm(ref ins, i, OpKind.Immediate32to64, imm?.Invoke(i) ?? EdgeValues.Of(r, 32)); break;
                case OpCodeOperandKind.imm64: SetImm(ref ins, i, OpKind.Immediate64, imm?.Invoke(i) ?? EdgeValues.Register(r)); break;
                default: throw new InvalidOperationException($"{code}: operand kind {k} is not generated");
            }
        }
        if (op.CanUseLockPrefix && ins.Op0Kind == OpKind.Memory && r.Chance(30)) ins.HasLockPrefix = true;
        return ins;
    }

    /// <summary>Legacy SSE 16-byte memory operands fault (#GP) unless aligned, except the explicitly unaligned moves.</summary>
    public static int AlignmentOf(Code code, int memSize)
    {
        var m = code.Mnemonic();
        if (m == Mnemonic.Cmpxchg16b) return 16;
        if (memSize == 16 && m is not (Mnemonic.Movdqu or Mnemonic.Movups or Mnemonic.Movupd or Mnemonic.Lddqu)) return 16;
        return 1;
    }

    private static void RegOrMem(CaseContext ctx, ref Instruction ins, int i, int regBytes, int memSize, Code code)
    {
        if (ctx.Rng.Chance(55)) SetReg(ref ins, i, Gpr(ctx.Rng, regBytes));
        else SetMemory(ctx, ref ins, i, memSize > 0 ? memSize : regBytes, AlignmentOf(code, memSize));
    }

    public static void SetReg(ref Instruction ins, int i, Register reg)
    {
        ins.SetOpKind(i, OpKind.Register);
        ins.SetOpRegister(i, reg);
    }

    private static void SetImm(ref Instruction ins, int i, OpKind kind, ulong value)
    {
        ins.SetOpKind(i, kind);
        ins.SetImmediate(i, kind switch
        {
            OpKind.Immediate8 or OpKind.Immediate8to16 or OpKind.Immediate8to32 or OpKind.Immediate8to64 => (ulong)(sbyte)(byte)value,
            OpKind.Immediate16 => (ulong)(short)(ushort)value,
            OpKind.Immediate32 or OpKind.Immediate32to64 => (ulong)(int)(uint)value,
            _ => value,
        });
    }

    /// <summary>A guest address of <paramref name="size"/> bytes well inside the data buffer, often straddling its middle page boundary.</summary>
    public static ulong Target(CaseContext ctx, int size, int align)
    {
        var r = ctx.Rng;
        ulong pageBoundary = ctx.DataAddress + 0x1000;
        ulong t = size > 1 && r.Chance(20)
            ? pageBoundary - (ulong)r.Next(1, size)
            : ctx.DataAddress + 0x800 + (ulong)r.Next(0x1000 - size);
        if (align > 1) t &= ~(ulong)(align - 1);
        else if (r.Chance(30)) t &= ~(ulong)(Math.Min(size, 8) - 1);
        return t;
    }

    /// <summary>A memory operand at a buffer address, reached through one of the 64-bit addressing forms.</summary>
    public static void SetMemory(CaseContext ctx, ref Instruction ins, int i, int size, int align)
    {
        var r = ctx.Rng;
        ulong t = Target(ctx, Math.Max(size, 1), align);
        ins.SetOpKind(i, OpKind.Memory);
        ins.MemoryBase = Register.None;
        ins.MemoryIndex = Register.None;
        ins.MemoryIndexScale = 1;
        ins.MemoryDisplSize = 8;
        bool addr32 = r.Chance(8); // 67h prefix: 32-bit effective address (the region sits below 4 GiB)
        int form = ctx.PtrReg < 0 ? 3 : r.Next(7);
        if (form >= 4 && ctx.IdxReg < 0) form = 0;
        switch (form)
        {
            case 0 or 1: // [base + disp]
                ins.MemoryBase = (addr32 ? Register.EAX : Register.RAX) + ctx.PtrReg;
                ins.MemoryDisplacement64 = Disp(t - ctx.Gpr(ctx.PtrReg), addr32);
                break;
            case 2: // [rip + disp]
                ins.MemoryBase = Register.RIP;
                ins.MemoryDisplacement64 = t;
                addr32 = false;
                break;
            case 3: // [disp32]
                ins.MemoryDisplacement64 = t;
                break;
            case 4 or 5: // [base + index*scale + disp]
            {
                int scale = 1 << r.Next(4);
                ins.MemoryBase = (addr32 ? Register.EAX : Register.RAX) + ctx.PtrReg;
                ins.MemoryIndex = (addr32 ? Register.EAX : Register.RAX) + ctx.IdxReg;
                ins.MemoryIndexScale = scale;
                ins.MemoryDisplacement64 = Disp(t - ctx.Gpr(ctx.PtrReg) - ctx.Gpr(ctx.IdxReg) * (ulong)scale, addr32);
                break;
            }
            default: // [index*scale + disp32]
            {
                int scale = 1 << r.Next(4);
                ins.MemoryIndex = (addr32 ? Register.EAX : Register.RAX) + ctx.IdxReg;
                ins.MemoryIndexScale = scale;
                ins.MemoryDisplacement64 = Disp(t - ctx.Gpr(ctx.IdxReg) * (ulong)scale, addr32);
                break;
            }
        }
        if (addr32)
        {
            ins.MemoryDisplSize = 4;
            ins.MemoryDisplacement64 &= 0xFFFF_FFFF;
        }
    }

    private static ulong Disp(ulong d, bool addr32) => addr32 ? d & 0xFFFF_FFFF : d;
}
