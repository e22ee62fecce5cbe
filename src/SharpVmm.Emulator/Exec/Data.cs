using System.Runtime.CompilerServices;

namespace SharpVmm.Emulator;

internal static unsafe partial class Handlers
{
    public static void Nop(X86Cpu c, ref Op op) { }

    /// <summary>Translates the memory operand as a read (faults included) without touching memory: CLFLUSH.</summary>
    public static void ProbeRead(X86Cpu c, ref Op op) => c.Translate(c.Ea(ref op), X86Cpu.AccRead, c.UserBit != 0);

    public static void MovRR(X86Cpu c, ref Op op) => c.SetReg(op.Reg, op.Size, c.GetReg(op.Rm, op.Size));
    public static void MovRR64(X86Cpu c, ref Op op) => c.R[op.Reg] = c.R[op.Rm];
    public static void MovRR32(X86Cpu c, ref Op op) => c.R[op.Reg] = (uint)c.R[op.Rm];
    public static void MovRI(X86Cpu c, ref Op op) => c.SetReg(op.Reg, op.Size, op.Imm);
    public static void MovRI64(X86Cpu c, ref Op op) => c.R[op.Reg] = op.Imm;
    public static void MovRM(X86Cpu c, ref Op op) => c.SetReg(op.Reg, op.Size, c.ReadMem(c.Ea(ref op), op.Size));
    public static void MovRM64(X86Cpu c, ref Op op) => c.R[op.Reg] = c.Read64(c.Ea(ref op));
    public static void MovRM32(X86Cpu c, ref Op op) => c.R[op.Reg] = c.Read32(c.Ea(ref op));
    public static void MovMR(X86Cpu c, ref Op op) => c.WriteMem(c.Ea(ref op), op.Size, c.GetReg(op.Reg, op.Size));
    public static void MovMR64(X86Cpu c, ref Op op) => c.Write64(c.Ea(ref op), c.R[op.Reg]);
    public static void MovMR32(X86Cpu c, ref Op op) => c.Write32(c.Ea(ref op), (uint)c.R[op.Reg]);
    public static void MovMI(X86Cpu c, ref Op op) => c.WriteMem(c.Ea(ref op), op.Size, op.Imm);

    /// <summary>MOVZX/MOVSX/MOVSXD: op.Size = destination, op.Size2 = source, op.Cc = 1 to sign-extend.</summary>
    public static void MovxRR(X86Cpu c, ref Op op)
    {
        ulong v = c.GetReg(op.Rm, op.Size2);
        c.SetReg(op.Reg, op.Size, op.Cc != 0 ? (ulong)X86Cpu.SignExtend(v, op.Size2) : v);
    }

    public static void MovxRM(X86Cpu c, ref Op op)
    {
        ulong v = c.ReadMem(c.Ea(ref op), op.Size2);
        c.SetReg(op.Reg, op.Size, op.Cc != 0 ? (ulong)X86Cpu.SignExtend(v, op.Size2) : v);
    }

    public static void Lea(X86Cpu c, ref Op op) => c.SetReg(op.Reg, op.Size, c.EaOffset(ref op));

    public static void PushR(X86Cpu c, ref Op op) => c.Push(op.Size, c.GetReg(op.Reg, op.Size));
    public static void PushI(X86Cpu c, ref Op op) => c.Push(op.Size, op.Imm);
    public static void PushM(X86Cpu c, ref Op op) => c.Push(op.Size, c.ReadMem(c.Ea(ref op), op.Size));

    public static void PopR(X86Cpu c, ref Op op)
    {
        ulong v = c.Pop(op.Size);
        c.SetReg(op.Reg, op.Size, v);
    }

    public static void PopM(X86Cpu c, ref Op op)
    {
        ulong rsp = c.R[4];
        ulong v = c.Pop(op.Size);
        try { c.WriteMem(c.Ea(ref op), op.Size, v); }
        catch (CpuFaultException) { c.R[4] = rsp; throw; }
    }

    public static void XchgRR(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong a = c.GetReg(op.Reg, s), b = c.GetReg(op.Rm, s);
        c.SetReg(op.Reg, s, b);
        c.SetReg(op.Rm, s, a);
    }

    /// <summary>XCHG with memory is always atomic.</summary>
    public static void XchgRM(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong la = c.Ea(ref op);
        ulong v = c.GetReg(op.Reg, s);
        byte* p = c.HostForAtomic(la, s);
        ulong old;
        if (p == null)
        {
            lock (c.AtomicLock) { old = c.ReadMem(la, s); c.WriteMem(la, s, v); }
        }
        else
        {
            old = s switch
            {
                8 => Interlocked.Exchange(ref *(ulong*)p, v),
                4 => Interlocked.Exchange(ref *(uint*)p, (uint)v),
                2 => Interlocked.Exchange(ref *(ushort*)p, (ushort)v),
                _ => Interlocked.Exchange(ref *p, (byte)v),
            };
        }
        c.SetReg(op.Reg, s, old);
    }

    public static void CmpxchgR(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong acc = c.GetReg(0, s), dst = c.GetReg(op.Reg, s);
        OpCmp.Do(c, acc, dst, s);
        if (acc == dst) c.SetReg(op.Reg, s, c.GetReg(op.Rm, s));
        else c.SetReg(0, s, dst);
    }

    public static void CmpxchgM(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong la = c.Ea(ref op);
        ulong acc = c.GetReg(0, s), src = c.GetReg(op.Reg, s);
        byte* p = c.HostForAtomic(la, s);
        ulong old;
        if (p == null)
        {
            lock (c.AtomicLock)
            {
                old = c.ReadMem(la, s);
                c.WriteMem(la, s, old == acc ? src : old); // the destination is always written, as on hardware
            }
        }
        else
        {
            old = s switch
            {
                8 => Interlocked.CompareExchange(ref *(ulong*)p, src, acc),
                4 => Interlocked.CompareExchange(ref *(uint*)p, (uint)src, (uint)acc),
                2 => Interlocked.CompareExchange(ref *(ushort*)p, (ushort)src, (ushort)acc),
                _ => Interlocked.CompareExchange(ref *p, (byte)src, (byte)acc),
            };
        }
        OpCmp.Do(c, acc, old, s);
        if (old != acc) c.SetReg(0, s, old);
    }

    public static void XaddRR(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong d = c.GetReg(op.Reg, s), src = c.GetReg(op.Rm, s);
        ulong r = OpAdd.Do(c, d, src, s);
        c.SetReg(op.Rm, s, d);
        c.SetReg(op.Reg, s, r);
    }

    public static void XaddM(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong la = c.Ea(ref op);
        ulong src = c.GetReg(op.Reg, s);
        ulong old;
        byte* p = (op.Flags & OpFlags.Lock) != 0 ? c.HostForAtomic(la, s) : null;
        if (p != null && s >= 4)
        {
            old = s == 8 ? Interlocked.Add(ref *(ulong*)p, src) - src : (uint)(Interlocked.Add(ref *(uint*)p, (uint)src) - (uint)src);
            OpAdd.Do(c, old, src, s);
        }
        else if ((op.Flags & OpFlags.Lock) != 0)
        {
            lock (c.AtomicLock) { old = c.ReadMem(la, s); c.WriteMem(la, s, OpAdd.Do(c, old, src, s)); }
        }
        else
        {
            old = c.ReadMem(la, s);
            c.WriteMem(la, s, OpAdd.Do(c, old, src, s));
        }
        c.SetReg(op.Reg, s, old);
    }

    /// <summary>CMPXCHG8B (op.Size 8) and CMPXCHG16B (op.Size 16).</summary>
    public static void Cmpxchg8b16b(X86Cpu c, ref Op op)
    {
        ulong la = c.Ea(ref op);
        ulong* R = c.R;
        if (op.Size == 8)
        {
            ulong expect = ((ulong)(uint)R[2] << 32) | (uint)R[0];
            ulong repl = ((ulong)(uint)R[1] << 32) | (uint)R[3];
            byte* p = c.HostForAtomic(la, 8);
            ulong old;
            if (p != null) old = Interlocked.CompareExchange(ref *(ulong*)p, repl, expect);
            else lock (c.AtomicLock) { old = c.Read64(la); c.Write64(la, old == expect ? repl : old); }
            SetZf(c, old == expect);
            if (old != expect) { R[0] = (uint)old; R[2] = old >> 32; }
            return;
        }
        if ((la & 15) != 0) throw c.Gp();
        lock (c.AtomicLock)
        {
            ulong lo = c.Read64(la), hi = c.Read64(la + 8);
            bool eq = lo == R[0] && hi == R[2];
            if (eq) { c.Write64(la, R[3]); c.Write64(la + 8, R[1]); }
            else { c.Write64(la, lo); c.Write64(la + 8, hi); R[0] = lo; R[2] = hi; }
            SetZf(c, eq);
        }
    }

    private static void SetZf(X86Cpu c, bool z)
    {
        ulong f = c.ComputeArith() & ~X86Cpu.ZF;
        c.SetEager(z ? f | X86Cpu.ZF : f);
    }

    /// <summary>CBW/CWDE/CDQE: op.Size = destination size.</summary>
    public static void Cbw(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        c.SetReg(0, s, (ulong)X86Cpu.SignExtend(c.GetReg(0, s / 2), s / 2));
    }

    /// <summary>CWD/CDQ/CQO: op.Size = operand size.</summary>
    public static void Cwd(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        c.SetReg(2, s, X86Cpu.SignExtend(c.GetReg(0, s), s) < 0 ? ulong.MaxValue : 0);
    }

    public static void SetccR(X86Cpu c, ref Op op) => c.SetReg(op.Reg, 1, c.Cond(op.Cc) ? 1UL : 0);
    public static void SetccM(X86Cpu c, ref Op op) => c.Write8(c.Ea(ref op), c.Cond(op.Cc) ? (byte)1 : (byte)0);

    public static void CmovRR(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        // A 32-bit CMOV always writes its destination (zero-extending it), taken or not.
        c.SetReg(op.Reg, s, c.Cond(op.Cc) ? c.GetReg(op.Rm, s) : c.GetReg(op.Reg, s));
    }

    public static void CmovRM(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong v = c.ReadMem(c.Ea(ref op), s);
        c.SetReg(op.Reg, s, c.Cond(op.Cc) ? v : c.GetReg(op.Reg, s));
    }

    public static void Lahf(X86Cpu c, ref Op op) => c.SetReg(20, 1, (c.ComputeArith() & 0xD5) | 2);

    public static void Sahf(X86Cpu c, ref Op op)
    {
        ulong f = c.ComputeArith() & X86Cpu.OF;
        c.SetEager(f | (c.GetReg(20, 1) & 0xD5));
    }

    /// <summary>CLC/STC/CMC (op.Cc 0/1/2) and CLD/STD (3/4).</summary>
    public static void FlagOp(X86Cpu c, ref Op op)
    {
        switch (op.Cc)
        {
            case 0: c.SetEager(c.ComputeArith() & ~X86Cpu.CF); break;
            case 1: c.SetEager(c.ComputeArith() | X86Cpu.CF); break;
            case 2: c.SetEager(c.ComputeArith() ^ X86Cpu.CF); break;
            case 3: c.FlOther &= ~X86Cpu.DF; break;
            default: c.FlOther |= X86Cpu.DF; break;
        }
    }

    public static void Pushf(X86Cpu c, ref Op op) => c.Push(op.Size, c.GetRflags() & 0xFCFFFF); // VM and RF read as 0

    public static void Pusha(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong sp = c.R[4];
        for (int i = 0; i < 8; i++) c.Push(s, i == 4 ? sp : c.R[i]);
    }

    public static void Popa(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        for (int i = 7; i >= 0; i--)
        {
            ulong v = c.Pop(s);
            if (i != 4) c.SetReg(i, s, v);
        }
    }

    public static void Leave(X86Cpu c, ref Op op)
    {
        c.R[4] = (c.R[4] & ~c.StackMask) | (c.R[5] & c.StackMask);
        c.SetReg(5, op.Size, c.Pop(op.Size));
    }

    /// <summary>ENTER imm16 (op.Imm), imm8 nesting level (op.Imm2).</summary>
    public static void Enter(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        int level = (int)(op.Imm2 & 31);
        ulong rsp0 = c.R[4];
        c.Push(s, c.GetReg(5, s));
        ulong frame = c.R[4] & c.StackMask;
        for (int i = 1; i < level; i++)
        {
            ulong bp = (c.GetReg(5, s) - (ulong)(i * s)) & c.StackMask;
            try { c.Push(s, c.ReadMem((c.R[X86Cpu.SegBaseSlot + X86Cpu.SS] + bp) & c.LinMask, s)); }
            catch (CpuFaultException) { c.R[4] = rsp0; throw; }
        }
        if (level > 0) c.Push(s, frame);
        c.SetReg(5, s, frame);
        c.R[4] = (c.R[4] & ~c.StackMask) | ((c.R[4] - (op.Imm & 0xFFFF)) & c.StackMask);
    }

    public static void Xlat(X86Cpu c, ref Op op)
    {
        ulong off = (c.R[3] + (byte)c.R[0]) & op.AddrMask;
        c.SetReg(0, 1, c.Read8((off + c.R[X86Cpu.SegBaseSlot + op.Seg]) & c.LinMask));
    }

    // ---------------------------------------------------------------- port I/O

    /// <summary>IN: port from op.Imm, or DX when op.Cc = 1.</summary>
    public static void In(X86Cpu c, ref Op op)
    {
        ushort port = op.Cc != 0 ? (ushort)c.R[2] : (ushort)op.Imm;
        c.CheckIoPermission(port, op.Size);
        c.SetReg(0, op.Size, c.PortRead(port, op.Size));
    }

    public static void Out(X86Cpu c, ref Op op)
    {
        ushort port = op.Cc != 0 ? (ushort)c.R[2] : (ushort)op.Imm;
        c.CheckIoPermission(port, op.Size);
        c.PortWrite(port, op.Size, c.GetReg(0, op.Size));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void InvalidOpcode(X86Cpu c, ref Op op)
    {
        c.Rip = c.CurrentIp(ref op);
        c.LogUnimplemented("an invalid opcode");
        throw c.Ud();
    }

    /// <summary>Base register + a displacement too wide for <see cref="Op.Disp"/>, for the next op's address.</summary>
    public static void WideDisp(X86Cpu c, ref Op op) => c.R[X86Cpu.WideDispReg] = c.R[op.Base] + op.Imm;

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void AbortBlock(X86Cpu c, ref Op op)
    {
        c.Rip = c.CurrentIp(ref op);
        throw c.BlockAbort;
    }
}
