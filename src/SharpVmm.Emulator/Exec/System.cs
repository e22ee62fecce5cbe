using Iced.Intel;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>
/// The slow handler: system and rare instructions, run from the Iced instruction itself. Always ends its block,
/// so mode, paging and interrupt-flag changes take effect before the next instruction is looked up.
/// </summary>
internal static unsafe partial class Handlers
{
    public static void SystemOp(X86Cpu c, ref Op op)
    {
        ref Instruction ins = ref c.CurBlock!.Instrs[(int)op.Imm2];
        ulong next = c.NextIp(ref op);
        c.Rip = next;
        c.RequestAttention(); // back to the outer loop: HLT, mode and interrupt-flag changes are handled there
        switch (ins.Code)
        {
            case Code.Sysretd:
            case Code.Sysretq:
            {
                bool tf = (c.FlOther & X86Cpu.TF) != 0;
                c.Sysret(ins.Code == Code.Sysretq ? 8 : 4);
                c.SingleStepFollowsNewTf(tf);
                return;
            }
            case Code.Sysexitd: c.Sysexit(4); return;
            case Code.Sysexitq: c.Sysexit(8); return;
        }
        switch (ins.Mnemonic)
        {
            case Mnemonic.Hlt:
                RequireCpl0(c);
                c.Halted = true;
                return;
            case Mnemonic.Cli:
                if (c.ProtectedMode && c.Cpl > c.Iopl) throw c.Gp();
                c.FlOther &= ~X86Cpu.IF;
                return;
            case Mnemonic.Sti:
                if (c.ProtectedMode && c.Cpl > c.Iopl) throw c.Gp();
                if (!c.InterruptsEnabled) { c.FlOther |= X86Cpu.IF; c.SetInterruptShadow(); }
                return;
            case Mnemonic.Popf:
            case Mnemonic.Popfd:
            case Mnemonic.Popfq:
            {
                int size = ins.Mnemonic == Mnemonic.Popf ? 2 : ins.Mnemonic == Mnemonic.Popfd ? 4 : 8;
                ulong v = c.Pop(size);
                c.SetFlagsFromPop(v, size, c.ProtectedMode ? c.Cpl : 0);
                return;
            }
            case Mnemonic.Int:
                throw c.SoftwareInterrupt((int)ins.Immediate8, c.CurrentIp(ref op));
            case Mnemonic.Int3:
                throw c.SoftwareInterrupt(3, c.CurrentIp(ref op));
            case Mnemonic.Into:
                if (c.Cond(0)) throw c.SoftwareInterrupt(4, c.CurrentIp(ref op));
                return;
            case Mnemonic.Int1:
                c.Rip = c.CurrentIp(ref op);
                throw c.Fault(1);
            case Mnemonic.Ud0:
            case Mnemonic.Ud1:
            case Mnemonic.Ud2:
                throw c.Ud();
            case Mnemonic.Iret:
            case Mnemonic.Iretd:
            case Mnemonic.Iretq:
                c.Iret(ins.Mnemonic == Mnemonic.Iret ? 2 : ins.Mnemonic == Mnemonic.Iretd ? 4 : 8);
                return;
            case Mnemonic.Cpuid:
                c.Cpuid();
                return;
            case Mnemonic.Rdtsc:
                if ((c.Cr4 & 4) != 0 && c.Cpl != 0 && c.ProtectedMode) throw c.Gp();
                SetEdxEax(c, c.ReadTsc());
                return;
            case Mnemonic.Rdtscp:
                if ((c.Cr4 & 4) != 0 && c.Cpl != 0 && c.ProtectedMode) throw c.Gp();
                SetEdxEax(c, c.ReadTsc());
                c.R[1] = (uint)c.ReadMsrOrZero(0xC000_0103);
                return;
            case Mnemonic.Stac:
            case Mnemonic.Clac:
                if (c.ProtectedMode && c.Cpl != 0) throw c.Ud();
                if (ins.Mnemonic == Mnemonic.Stac)
                {
                    c.FlOther |= X86Cpu.AC;
                    c.OpenSmapWindow();
                }
                else
                {
                    c.FlOther &= ~X86Cpu.AC;
                    c.CloseSmapWindow();
                }
                return;
            case Mnemonic.Rdpid:
                // TSC_AUX (the CPU number Linux keeps there), without RDTSCP's TSC read or its CR4.TSD check.
                c.SetReg(op.Reg, c.Bitness == 64 ? 8 : 4, (uint)c.ReadMsrOrZero(X86Cpu.MsrTscAux));
                return;
            case Mnemonic.Invpcid:
                Invpcid(c, ref op);
                return;
            case Mnemonic.Rdmsr:
                RequireCpl0(c);
                SetEdxEax(c, c.ReadMsr((uint)c.R[1]));
                return;
            case Mnemonic.Wrmsr:
                RequireCpl0(c);
                c.WriteMsr((uint)c.R[1], ((ulong)(uint)c.R[2] << 32) | (uint)c.R[0]);
                return;
            case Mnemonic.Mov:
                MovSystem(c, ref op, ref ins);
                return;
            case Mnemonic.Push:
                c.Push(StackSize(c, ref ins), c.Sreg[SegOf(ins.Op0Register)].Selector);
                return;
            case Mnemonic.Pop:
            {
                int seg = SegOf(ins.Op0Register);
                int size = StackSize(c, ref ins);
                ulong rsp = c.R[4];
                ulong v = c.Pop(size);
                try { c.LoadSegment(seg, (ushort)v); }
                catch (CpuFaultException) { c.R[4] = rsp; throw; }
                if (seg == X86Cpu.SS) c.SetInterruptShadow();
                return;
            }
            case Mnemonic.Lds: case Mnemonic.Les: case Mnemonic.Lfs: case Mnemonic.Lgs: case Mnemonic.Lss:
            {
                int size = ins.Op0Register.GetSize();
                ulong la = c.Ea(ref op);
                ulong off = c.ReadMem(la, size);
                ushort sel = c.Read16((la + (ulong)size) & c.LinMask);
                int seg = ins.Mnemonic switch { Mnemonic.Lds => X86Cpu.DS, Mnemonic.Les => X86Cpu.ES, Mnemonic.Lfs => X86Cpu.FS, Mnemonic.Lgs => X86Cpu.GS, _ => X86Cpu.SS };
                c.LoadSegment(seg, sel);
                c.SetReg(op.Reg, size, off);
                return;
            }
            case Mnemonic.Jmp:
            case Mnemonic.Call:
                FarTransfer(c, ref op, ref ins, ins.Mnemonic == Mnemonic.Call, next);
                return;
            case Mnemonic.Retf:
                FarReturn(c, ref ins);
                return;
            case Mnemonic.Lgdt:
            case Mnemonic.Lidt:
            {
                RequireCpl0(c);
                ulong la = c.Ea(ref op);
                ushort limit = c.Read16(la);
                ulong b = c.Bitness == 64 ? c.Read64((la + 2) & c.LinMask) : c.Read32((la + 2) & c.LinMask);
                if (c.Bitness != 64 && ins.Code is Code.Lgdt_m1632_16 or Code.Lidt_m1632_16) b &= 0xFF_FFFF;
                var t = new SharpVmm.Core.Cpu.DescriptorTable { Base = b, Limit = limit };
                if (ins.Mnemonic == Mnemonic.Lgdt) c.Gdtr = t; else c.Idtr = t;
                return;
            }
            case Mnemonic.Sgdt:
            case Mnemonic.Sidt:
            {
                RequireUmipPrivilege(c);
                var t = ins.Mnemonic == Mnemonic.Sgdt ? c.Gdtr : c.Idtr;
                ulong la = c.Ea(ref op);
                c.Write16(la, t.Limit);
                if (c.Bitness == 64) c.Write64((la + 2) & c.LinMask, t.Base);
                else c.Write32((la + 2) & c.LinMask, (uint)t.Base);
                return;
            }
            case Mnemonic.Lldt:
            case Mnemonic.Ltr:
                RequireProtected(c);
                RequireCpl0(c);
                c.LoadSystemSegment(ins.Mnemonic == Mnemonic.Ltr, (ushort)ReadOperand16(c, ref op, ref ins));
                return;
            case Mnemonic.Sldt:
            case Mnemonic.Str:
            {
                RequireProtected(c);
                RequireUmipPrivilege(c);
                ushort sel = c.Sreg[ins.Mnemonic == Mnemonic.Str ? X86Cpu.TR : X86Cpu.LDTR].Selector;
                if (ins.Op0Kind == OpKind.Register) c.SetReg(op.Reg, ins.Op0Register.GetSize(), sel);
                else c.Write16(c.Ea(ref op), sel);
                return;
            }
            case Mnemonic.Lmsw:
            {
                RequireCpl0(c);
                ulong v = ReadOperand16(c, ref op, ref ins) & 0xF;
                ulong cr0 = (c.Cr0 & ~(Cr0Mp | Cr0Em | Cr0Ts)) | v | (c.Cr0 & Cr0Pe); // LMSW can set PE but never clear it
                c.WriteCr(0, cr0);
                return;
            }
            case Mnemonic.Smsw:
                RequireUmipPrivilege(c);
                if (ins.Op0Kind == OpKind.Register) c.SetReg(op.Reg, ins.Op0Register.GetSize(), c.Cr0);
                else c.Write16(c.Ea(ref op), (ushort)c.Cr0);
                return;
            case Mnemonic.Clts:
                RequireCpl0(c);
                c.Cr0 &= ~8UL;
                return;
            case Mnemonic.Invlpg:
                RequireCpl0(c);
                c.InvalidatePage(c.Ea(ref op));
                return;
            case Mnemonic.Wbinvd:
            case Mnemonic.Invd:
                RequireCpl0(c);
                return;
            case Mnemonic.Swapgs:
            {
                if (c.Bitness != 64) throw c.Ud();
                RequireCpl0(c);
                ulong k = c.ReadMsrOrZero(0xC000_0102);
                c.WriteMsr(0xC000_0102, c.Sreg[X86Cpu.GS].Base);
                c.Sreg[X86Cpu.GS].Base = k;
                c.UpdateMode();
                return;
            }
            case Mnemonic.Syscall:
            {
                bool tf = (c.FlOther & X86Cpu.TF) != 0;
                c.Syscall(next);
                c.SingleStepFollowsNewTf(tf);
                return;
            }
            case Mnemonic.Sysenter:
                c.Sysenter();
                return;
            case Mnemonic.Lsl:
            case Mnemonic.Lar:
            case Mnemonic.Verr:
            case Mnemonic.Verw:
                c.SegmentQuery(ref op, ref ins);
                return;
            case Mnemonic.Fxsave:
            case Mnemonic.Fxsave64:
                c.Fxsave(c.Ea(ref op));
                return;
            case Mnemonic.Fxrstor:
            case Mnemonic.Fxrstor64:
                c.Fxrstor(c.Ea(ref op));
                return;
            case Mnemonic.Xgetbv:
                SetEdxEax(c, c.Xgetbv((uint)c.R[1]));
                return;
            case Mnemonic.Rdpkru:
                SetEdxEax(c, c.Rdpkru((uint)c.R[1]));
                return;
            case Mnemonic.Wrpkru:
                c.Wrpkru((uint)c.R[1], (uint)c.R[2], (uint)c.R[0]);
                return;
            case Mnemonic.Xsetbv:
                c.Xsetbv((uint)c.R[1], ((ulong)(uint)c.R[2] << 32) | (uint)c.R[0]);
                return;
            case Mnemonic.Xsave:
            case Mnemonic.Xsave64:
            case Mnemonic.Xsaveopt:
            case Mnemonic.Xsaveopt64:
                c.Xsave(c.Ea(ref op), ((ulong)(uint)c.R[2] << 32) | (uint)c.R[0]);
                return;
            case Mnemonic.Xrstor:
            case Mnemonic.Xrstor64:
                c.Xrstor(c.Ea(ref op), ((ulong)(uint)c.R[2] << 32) | (uint)c.R[0]);
                return;
            case Mnemonic.Ldmxcsr:
            {
                uint v = c.Read32(c.Ea(ref op));
                if ((v & 0xFFFF_0000) != 0) throw c.Gp();
                c.Mxcsr = v;
                return;
            }
            case Mnemonic.Stmxcsr:
                c.Write32(c.Ea(ref op), c.Mxcsr);
                return;
        }
        c.Rip = c.CurrentIp(ref op);
        c.LogUnimplemented(ins.Mnemonic.ToString().ToLowerInvariant());
        throw c.Ud();
    }

    private static int SegOf(Register r) => r switch
    {
        Register.ES => X86Cpu.ES,
        Register.CS => X86Cpu.CS,
        Register.SS => X86Cpu.SS,
        Register.DS => X86Cpu.DS,
        Register.FS => X86Cpu.FS,
        _ => X86Cpu.GS,
    };

    private static int StackSize(X86Cpu c, ref Instruction ins)
    {
        int inc = Math.Abs(ins.StackPointerIncrement);
        return inc is 2 or 4 or 8 ? inc : c.Bitness == 64 ? 8 : c.Bitness / 8;
    }

    private static void SetEdxEax(X86Cpu c, ulong v)
    {
        c.R[0] = (uint)v;
        c.R[2] = v >> 32;
    }

    private static void RequireCpl0(X86Cpu c)
    {
        if (c.ProtectedMode && c.Cpl != 0) throw c.Gp();
    }

    /// <summary>UMIP: SGDT, SIDT, SLDT, STR and SMSW are privileged outside ring 0.</summary>
    private static void RequireUmipPrivilege(X86Cpu c)
    {
        if ((c.Cr4 & Cr4Umip) != 0 && c.ProtectedMode && c.Cpl != 0) throw c.Gp();
    }

    /// <summary>
    /// INVPCID type, [descriptor]: 0 one address in one PCID, 1 one PCID, 2 everything, 3 everything but global
    /// pages. The TLB is not tagged by PCID, so the narrower types drop a little more than asked (allowed).
    /// </summary>
    private static void Invpcid(X86Cpu c, ref Op op)
    {
        if (!c.ProtectedMode) throw c.Ud();
        RequireCpl0(c);
        ulong type = c.GetReg(op.Reg, c.Bitness == 64 ? 8 : 4);
        ulong la = c.Ea(ref op);
        ulong pcid = c.Read64(la);
        ulong address = c.Read64((la + 8) & c.LinMask);
        if (type > 3 || (pcid >> 12) != 0) throw c.Gp();
        if (type <= 1 && (c.Cr4 & Cr4Pcide) == 0 && pcid != 0) throw c.Gp();
        switch (type)
        {
            case 0:
                if (!X86Cpu.IsCanonical(address)) throw c.Gp();
                c.InvalidatePage(address);
                return;
            case 2:
                c.FlushTlb();
                return;
            default:
                c.FlushNonGlobalTlb();
                return;
        }
    }

    private static void RequireProtected(X86Cpu c)
    {
        if (!c.ProtectedMode) throw c.Ud();
    }

    private static ulong ReadOperand16(X86Cpu c, ref Op op, ref Instruction ins)
        => ins.Op0Kind == OpKind.Register ? c.GetReg(op.Reg, 2) : c.Read16(c.Ea(ref op));

    private static void MovSystem(X86Cpu c, ref Op op, ref Instruction ins)
    {
        var r0 = ins.Op0Kind == OpKind.Register ? ins.Op0Register : Register.None;
        var r1 = ins.OpCount > 1 && ins.Op1Kind == OpKind.Register ? ins.Op1Register : Register.None;
        if (r0.IsSegmentRegister())
        {
            if (r0 == Register.CS) throw c.Ud();
            ushort sel = ins.Op1Kind == OpKind.Register ? (ushort)c.GetReg(op.Rm, 2) : c.Read16(c.Ea(ref op));
            int seg = SegOf(r0);
            c.LoadSegment(seg, sel);
            if (seg == X86Cpu.SS) c.SetInterruptShadow();
            return;
        }
        if (r1.IsSegmentRegister())
        {
            ushort sel = c.Sreg[SegOf(r1)].Selector;
            if (ins.Op0Kind == OpKind.Register) c.SetReg(op.Reg, r0.GetSize(), sel);
            else c.Write16(c.Ea(ref op), sel);
            return;
        }
        RequireCpl0(c);
        int regSize = c.Bitness == 64 ? 8 : 4;
        if (r0.IsCR()) { c.WriteCr(r0.GetNumber(), c.GetReg(op.Rm, regSize)); return; }
        if (r1.IsCR()) { c.SetReg(op.Reg, regSize, c.ReadCr(r1.GetNumber())); return; }
        if (r0.IsDR()) { c.WriteDr(r0.GetNumber(), c.GetReg(op.Rm, regSize)); return; }
        if (r1.IsDR()) { c.SetReg(op.Reg, regSize, c.ReadDr(r1.GetNumber())); return; }
        throw c.Ud();
    }

    private static void FarTransfer(X86Cpu c, ref Op op, ref Instruction ins, bool call, ulong next)
    {
        ushort sel;
        ulong off;
        int size;
        if (ins.Op0Kind is OpKind.FarBranch16 or OpKind.FarBranch32)
        {
            sel = ins.FarBranchSelector;
            off = ins.Op0Kind == OpKind.FarBranch16 ? ins.FarBranch16 : ins.FarBranch32;
            size = ins.Op0Kind == OpKind.FarBranch16 ? 2 : 4;
        }
        else
        {
            size = ins.MemorySize switch { MemorySize.SegPtr16 => 2, MemorySize.SegPtr32 => 4, _ => 8 };
            ulong la = c.Ea(ref op);
            off = c.ReadMem(la, size);
            sel = c.Read16((la + (ulong)size) & c.LinMask);
        }
        ushort oldCs = c.Sreg[X86Cpu.CS].Selector;
        if (!c.ProtectedMode)
        {
            if (call) { c.Push(size, oldCs); c.Push(size, next); }
            c.LoadRealCs(sel);
            c.Rip = off & (size == 2 ? 0xFFFFUL : 0xFFFF_FFFF);
            return;
        }
        var cs = c.CheckFarCodeTarget(sel, false, out int cpl);
        ulong rsp = c.R[4];
        if (call)
        {
            c.Push(size, oldCs);
            try { c.Push(size, next); }
            catch (CpuFaultException) { c.R[4] = rsp; throw; }
        }
        c.LoadCodeSegment(sel, cs, cpl);
        c.Rip = c.Bitness == 64 ? off : off & (size == 2 ? 0xFFFFUL : 0xFFFF_FFFF);
    }

    private static void FarReturn(X86Cpu c, ref Instruction ins)
    {
        int size = ins.Code switch { Code.Retfw or Code.Retfw_imm16 => 2, Code.Retfq or Code.Retfq_imm16 => 8, _ => 4 };
        ulong imm = ins.OpCount > 0 ? ins.GetImmediate(0) : 0;
        ulong rsp0 = c.R[4];
        ulong ip = c.Pop(size);
        ushort sel = (ushort)c.Pop(size);
        if (!c.ProtectedMode)
        {
            c.LoadRealCs(sel);
            c.Rip = ip & 0xFFFF;
            c.R[4] = (c.R[4] & ~c.StackMask) | ((c.R[4] + imm) & c.StackMask);
            return;
        }
        SharpVmm.Core.Cpu.SegmentRegister cs;
        int cpl;
        try { cs = c.CheckFarCodeTarget(sel, true, out cpl); }
        catch (CpuFaultException) { c.R[4] = rsp0; throw; }
        int oldCpl = c.Cpl;
        if (cpl > oldCpl)
        {
            c.R[4] = (c.R[4] & ~c.StackMask) | ((c.R[4] + imm) & c.StackMask);
            ulong sp = c.Pop(size);
            ushort ss = (ushort)c.Pop(size);
            c.LoadCodeSegment(sel, cs, cpl);
            c.LoadSegment(X86Cpu.SS, ss);
            c.R[4] = (c.R[4] & ~c.StackMask) | ((sp + imm) & c.StackMask);
            c.NullifyInaccessibleSegments();
        }
        else
        {
            c.LoadCodeSegment(sel, cs, cpl);
            c.R[4] = (c.R[4] & ~c.StackMask) | ((c.R[4] + imm) & c.StackMask);
        }
        c.Rip = c.Bitness == 64 ? ip : ip & (size == 2 ? 0xFFFFUL : 0xFFFF_FFFF);
    }
}
