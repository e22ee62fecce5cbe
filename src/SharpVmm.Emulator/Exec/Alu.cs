using System.Numerics;
using System.Runtime.CompilerServices;

namespace SharpVmm.Emulator;

/// <summary>A two-operand ALU operation; generic handlers are specialized per operation by the JIT.</summary>
internal interface IBinOp
{
    static abstract bool Store { get; }
    static abstract ulong Do(X86Cpu c, ulong a, ulong b, int size);
}

internal interface IUnOp
{
    static abstract ulong Do(X86Cpu c, ulong a, int size);
}

internal struct OpAdd : IBinOp
{
    public static bool Store => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s) { ulong r = a + b; c.SetLazy(X86Cpu.FkAdd, a, b, r, s); return r; }
}

internal struct OpOr : IBinOp
{
    public static bool Store => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s) { ulong r = a | b; c.SetLogic(r, s); return r; }
}

internal struct OpAdc : IBinOp
{
    public static bool Store => true;
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s)
    {
        ulong cin = c.GetCf() ? 1UL : 0;
        ulong r = a + b + cin;
        c.FlCin = cin;
        c.SetLazy(X86Cpu.FkAdc, a, b, r, s);
        return r;
    }
}

internal struct OpSbb : IBinOp
{
    public static bool Store => true;
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s)
    {
        ulong cin = c.GetCf() ? 1UL : 0;
        ulong r = a - b - cin;
        c.FlCin = cin;
        c.SetLazy(X86Cpu.FkSbb, a, b, r, s);
        return r;
    }
}

internal struct OpAnd : IBinOp
{
    public static bool Store => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s) { ulong r = a & b; c.SetLogic(r, s); return r; }
}

internal struct OpSub : IBinOp
{
    public static bool Store => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s) { ulong r = a - b; c.SetLazy(X86Cpu.FkSub, a, b, r, s); return r; }
}

internal struct OpXor : IBinOp
{
    public static bool Store => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s) { ulong r = a ^ b; c.SetLogic(r, s); return r; }
}

internal struct OpCmp : IBinOp
{
    public static bool Store => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s) { ulong r = a - b; c.SetLazy(X86Cpu.FkSub, a, b, r, s); return r; }
}

internal struct OpTest : IBinOp
{
    public static bool Store => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Do(X86Cpu c, ulong a, ulong b, int s) { ulong r = a & b; c.SetLogic(r, s); return r; }
}

internal struct OpNot : IUnOp
{
    public static ulong Do(X86Cpu c, ulong a, int s) => ~a;
}

internal struct OpNeg : IUnOp
{
    public static ulong Do(X86Cpu c, ulong a, int s) { ulong r = 0 - a; c.SetLazy(X86Cpu.FkSub, 0, a, r, s); return r; }
}

internal struct OpInc : IUnOp
{
    public static ulong Do(X86Cpu c, ulong a, int s)
    {
        ulong cf = c.GetCf() ? 1UL : 0;
        ulong r = a + 1;
        c.FlCin = cf;
        c.SetLazy(X86Cpu.FkInc, a, 1, r, s);
        return r;
    }
}

internal struct OpDec : IUnOp
{
    public static ulong Do(X86Cpu c, ulong a, int s)
    {
        ulong cf = c.GetCf() ? 1UL : 0;
        ulong r = a - 1;
        c.FlCin = cf;
        c.SetLazy(X86Cpu.FkDec, a, 1, r, s);
        return r;
    }
}

internal static unsafe partial class Handlers
{
    // ---------------------------------------------------------------- binary ALU

    public static void BinRR<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        int s = op.Size;
        ulong r = T.Do(c, c.GetReg(op.Reg, s), c.GetReg(op.Rm, s), s);
        if (T.Store) c.SetReg(op.Reg, s, r);
    }

    public static void BinRR64<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        ulong r = T.Do(c, c.R[op.Reg], c.R[op.Rm], 8);
        if (T.Store) c.R[op.Reg] = r;
    }

    public static void BinRR32<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        ulong r = T.Do(c, (uint)c.R[op.Reg], (uint)c.R[op.Rm], 4);
        if (T.Store) c.R[op.Reg] = (uint)r;
    }

    public static void BinRI<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        int s = op.Size;
        ulong r = T.Do(c, c.GetReg(op.Reg, s), op.Imm, s);
        if (T.Store) c.SetReg(op.Reg, s, r);
    }

    public static void BinRI64<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        ulong r = T.Do(c, c.R[op.Reg], op.Imm, 8);
        if (T.Store) c.R[op.Reg] = r;
    }

    public static void BinRI32<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        ulong r = T.Do(c, (uint)c.R[op.Reg], op.Imm, 4);
        if (T.Store) c.R[op.Reg] = (uint)r;
    }

    public static void BinRM<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        int s = op.Size;
        ulong b = c.ReadMem(c.Ea(ref op), s);
        ulong r = T.Do(c, c.GetReg(op.Reg, s), b, s);
        if (T.Store) c.SetReg(op.Reg, s, r);
    }

    public static void BinMR<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        int s = op.Size;
        ulong la = c.Ea(ref op);
        ulong b = c.GetReg(op.Reg, s);
        if (T.Store && (op.Flags & OpFlags.Lock) != 0) { LockedRmw<T>(c, la, s, b); return; }
        ulong r = T.Do(c, c.ReadMem(la, s), b, s);
        if (T.Store) c.WriteMem(la, s, r);
    }

    public static void BinMI<T>(X86Cpu c, ref Op op) where T : struct, IBinOp
    {
        int s = op.Size;
        ulong la = c.Ea(ref op);
        if (T.Store && (op.Flags & OpFlags.Lock) != 0) { LockedRmw<T>(c, la, s, op.Imm); return; }
        ulong r = T.Do(c, c.ReadMem(la, s), op.Imm, s);
        if (T.Store) c.WriteMem(la, s, r);
    }

    /// <summary>LOCK'ed read-modify-write: a compare-exchange loop on the host address, atomic against other vCPU threads.</summary>
    private static void LockedRmw<T>(X86Cpu c, ulong la, int s, ulong b) where T : struct, IBinOp
    {
        byte* p = c.HostForAtomic(la, s);
        if (p == null)
        {
            lock (c.AtomicLock) c.WriteMem(la, s, T.Do(c, c.ReadMem(la, s), b, s));
            return;
        }
        switch (s)
        {
            case 8:
                while (true)
                {
                    ulong old = Volatile.Read(ref *(ulong*)p);
                    ulong r = T.Do(c, old, b, s);
                    if (Interlocked.CompareExchange(ref *(ulong*)p, r, old) == old) return;
                }
            case 4:
                while (true)
                {
                    uint old = Volatile.Read(ref *(uint*)p);
                    uint r = (uint)T.Do(c, old, b, s);
                    if (Interlocked.CompareExchange(ref *(uint*)p, r, old) == old) return;
                }
            case 2:
                while (true)
                {
                    ushort old = Volatile.Read(ref *(ushort*)p);
                    ushort r = (ushort)T.Do(c, old, b, s);
                    if (Interlocked.CompareExchange(ref *(ushort*)p, r, old) == old) return;
                }
            default:
                while (true)
                {
                    byte old = Volatile.Read(ref *p);
                    byte r = (byte)T.Do(c, old, b, s);
                    if (Interlocked.CompareExchange(ref *p, r, old) == old) return;
                }
        }
    }

    private struct UnAsBin<T> : IBinOp where T : struct, IUnOp
    {
        public static bool Store => true;
        public static ulong Do(X86Cpu c, ulong a, ulong b, int size) => T.Do(c, a, size);
    }

    public static void UnR<T>(X86Cpu c, ref Op op) where T : struct, IUnOp
    {
        int s = op.Size;
        c.SetReg(op.Reg, s, T.Do(c, c.GetReg(op.Reg, s), s));
    }

    public static void UnM<T>(X86Cpu c, ref Op op) where T : struct, IUnOp
    {
        int s = op.Size;
        ulong la = c.Ea(ref op);
        if ((op.Flags & OpFlags.Lock) != 0) { LockedRmw<UnAsBin<T>>(c, la, s, 0); return; }
        c.WriteMem(la, s, T.Do(c, c.ReadMem(la, s), s));
    }

    // ---------------------------------------------------------------- shifts and rotates

    /// <summary>op.Cc = /reg of the group-2 opcode (0 ROL .. 7 SAR); op.Size2 = 1 when the count is CL.</summary>
    public static void ShiftR(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        int count = op.Size2 != 0 ? (byte)c.R[1] : (int)op.Imm;
        c.SetReg(op.Reg, s, Shift(c, op.Cc, c.GetReg(op.Reg, s), count, s));
    }

    public static void ShiftM(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        int count = op.Size2 != 0 ? (byte)c.R[1] : (int)op.Imm;
        ulong la = c.Ea(ref op);
        ulong a = c.ReadMem(la, s);
        ulong r = Shift(c, op.Cc, a, count, s);
        c.WriteMem(la, s, r);
    }

    public static ulong Shift(X86Cpu c, int kind, ulong a, int count, int s)
    {
        int bits = s * 8;
        count &= s == 8 ? 63 : 31;
        ulong m = X86Cpu.SizeMask(s);
        a &= m;
        if (count == 0) return a;
        ulong sign = 1UL << (bits - 1);
        ulong f, r;
        switch (kind)
        {
            case 0: // ROL
            {
                int n = count % bits;
                r = n == 0 ? a : ((a << n) | (a >> (bits - n))) & m;
                f = c.ComputeArith() & ~(X86Cpu.CF | X86Cpu.OF);
                if ((r & 1) != 0) f |= X86Cpu.CF;
                if (((r & sign) != 0) != ((r & 1) != 0)) f |= X86Cpu.OF;
                c.SetEager(f);
                return r;
            }
            case 1: // ROR
            {
                int n = count % bits;
                r = n == 0 ? a : ((a >> n) | (a << (bits - n))) & m;
                f = c.ComputeArith() & ~(X86Cpu.CF | X86Cpu.OF);
                if ((r & sign) != 0) f |= X86Cpu.CF;
                if (((r & sign) != 0) != ((r & (sign >> 1)) != 0)) f |= X86Cpu.OF;
                c.SetEager(f);
                return r;
            }
            case 2: // RCL
            case 3: // RCR
            {
                int n = s == 1 ? count % 9 : s == 2 ? count % 17 : count;
                f = c.ComputeArith();
                ulong cf = f & X86Cpu.CF;
                r = a;
                if (n == 0) return r;
                for (int i = 0; i < n; i++)
                {
                    if (kind == 2)
                    {
                        ulong outBit = (r & sign) != 0 ? 1UL : 0;
                        r = ((r << 1) | cf) & m;
                        cf = outBit;
                    }
                    else
                    {
                        ulong outBit = r & 1;
                        r = (r >> 1) | (cf != 0 ? sign : 0);
                        cf = outBit;
                    }
                }
                f &= ~(X86Cpu.CF | X86Cpu.OF);
                f |= cf;
                bool of = kind == 2 ? ((r & sign) != 0) != (cf != 0) : ((r & sign) != 0) != ((r & (sign >> 1)) != 0);
                if (of) f |= X86Cpu.OF;
                c.SetEager(f);
                return r;
            }
            case 4: // SHL
            case 6: // SAL
                r = count >= 64 ? 0 : (a << count) & m;
                c.SetLazy(X86Cpu.FkShl, a, (ulong)count, r, s);
                return r;
            case 5: // SHR
                r = count >= 64 ? 0 : a >> count;
                c.SetLazy(X86Cpu.FkShr, a, (ulong)count, r, s);
                return r;
            default: // SAR
                r = (ulong)(X86Cpu.SignExtend(a, s) >> Math.Min(count, 63)) & m;
                c.SetLazy(X86Cpu.FkSar, a, (ulong)count, r, s);
                return r;
        }
    }

    public static ulong ResultFlags(ulong r, int s)
    {
        ulong m = X86Cpu.SizeMask(s);
        r &= m;
        ulong f = 0;
        if (r == 0) f |= X86Cpu.ZF;
        if ((r >> (s * 8 - 1) & 1) != 0) f |= X86Cpu.SF;
        if ((BitOperations.PopCount(r & 0xFF) & 1) == 0) f |= X86Cpu.PF;
        return f;
    }

    /// <summary>SHLD/SHRD: op.Cc 0 = left, 1 = right; op.Size2 = 1 when the count is CL; op.Rm (or op.Reg for memory) is the fill register.</summary>
    public static void DoubleShiftR(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        int count = op.Size2 != 0 ? (byte)c.R[1] : (int)op.Imm;
        c.SetReg(op.Reg, s, DoubleShift(c, op.Cc, c.GetReg(op.Reg, s), c.GetReg(op.Rm, s), count, s));
    }

    public static void DoubleShiftM(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        int count = op.Size2 != 0 ? (byte)c.R[1] : (int)op.Imm;
        ulong la = c.Ea(ref op);
        ulong a = c.ReadMem(la, s);
        c.WriteMem(la, s, DoubleShift(c, op.Cc, a, c.GetReg(op.Reg, s), count, s));
    }

    private static ulong DoubleShift(X86Cpu c, int right, ulong a, ulong b, int count, int s)
    {
        count &= s == 8 ? 63 : 31;
        if (count == 0) return a;
        int bits = s * 8;
        ulong m = X86Cpu.SizeMask(s);
        ulong sign = 1UL << (bits - 1);
        ulong r;
        bool cf;
        if (right == 0)
        {
            r = ((a << count) | (b >> (bits - count))) & m;
            cf = ((a >> (bits - count)) & 1) != 0;
        }
        else
        {
            r = ((a >> count) | (b << (bits - count))) & m;
            cf = ((a >> (count - 1)) & 1) != 0;
        }
        ulong f = ResultFlags(r, s) | (cf ? X86Cpu.CF : 0);
        if (((r ^ a) & sign) != 0) f |= X86Cpu.OF;
        c.SetEager(f);
        return r;
    }

    // ---------------------------------------------------------------- multiply and divide

    /// <summary>One-operand MUL/IMUL/DIV/IDIV; op.Cc 0..3 selects which.</summary>
    public static void MulDivR(X86Cpu c, ref Op op) => MulDiv(c, op.Cc, c.GetReg(op.Reg, op.Size), op.Size);

    public static void MulDivM(X86Cpu c, ref Op op) => MulDiv(c, op.Cc, c.ReadMem(c.Ea(ref op), op.Size), op.Size);

    private static void MulDiv(X86Cpu c, int kind, ulong src, int s)
    {
        ulong* R = c.R;
        switch (kind)
        {
            case 0: // MUL
            {
                ulong lo, hi;
                switch (s)
                {
                    case 1: { ulong p = (byte)R[0] * src; lo = p & 0xFF; hi = p >> 8; c.SetReg(0, 2, p); break; }
                    case 2: { ulong p = (ushort)R[0] * src; lo = p & 0xFFFF; hi = p >> 16; c.SetReg(0, 2, lo); c.SetReg(2, 2, hi); break; }
                    case 4: { ulong p = (uint)R[0] * src; lo = (uint)p; hi = p >> 32; R[0] = lo; R[2] = hi; break; }
                    default: { hi = MulHigh(R[0], src, out lo); R[0] = lo; R[2] = hi; break; }
                }
                c.SetEager(ResultFlags(lo, s) | (hi != 0 ? X86Cpu.CF | X86Cpu.OF : 0));
                break;
            }
            case 1: // IMUL
            {
                long a = X86Cpu.SignExtend(c.GetReg(0, s), s), b = X86Cpu.SignExtend(src, s);
                bool overflow;
                ulong lo;
                switch (s)
                {
                    case 1: { long p = a * b; lo = (ulong)p & 0xFF; overflow = p != (sbyte)p; c.SetReg(0, 2, (ulong)p); break; }
                    case 2: { long p = a * b; lo = (ulong)p & 0xFFFF; overflow = p != (short)p; c.SetReg(0, 2, (ulong)p); c.SetReg(2, 2, (ulong)(p >> 16)); break; }
                    case 4: { long p = a * b; lo = (uint)p; overflow = p != (int)p; R[0] = (uint)p; R[2] = (uint)(p >> 32); break; }
                    default:
                    {
                        long hi = SignedMulHigh(a, b, out long l);
                        lo = (ulong)l; overflow = hi != (l >> 63); R[0] = lo; R[2] = (ulong)hi; break;
                    }
                }
                c.SetEager(ResultFlags(lo, s) | (overflow ? X86Cpu.CF | X86Cpu.OF : 0));
                break;
            }
            case 2: // DIV
            {
                if (src == 0) throw c.De();
                switch (s)
                {
                    case 1: { ulong n = (ushort)R[0]; ulong q = n / src; if (q > 0xFF) throw c.De(); c.SetReg(0, 2, ((n % src) << 8) | q); break; }
                    case 2: { ulong n = ((ulong)(ushort)R[2] << 16) | (ushort)R[0]; ulong q = n / src; if (q > 0xFFFF) throw c.De(); c.SetReg(0, 2, q); c.SetReg(2, 2, n % src); break; }
                    case 4: { ulong n = ((ulong)(uint)R[2] << 32) | (uint)R[0]; ulong q = n / src; if (q > 0xFFFF_FFFF) throw c.De(); R[0] = q; R[2] = n % src; break; }
                    default:
                    {
                        UInt128 n = ((UInt128)R[2] << 64) | R[0];
                        UInt128 q = n / src;
                        if (q > ulong.MaxValue) throw c.De();
                        R[0] = (ulong)q; R[2] = (ulong)(n % src); break;
                    }
                }
                break;
            }
            default: // IDIV
            {
                long d = X86Cpu.SignExtend(src, s);
                if (d == 0) throw c.De();
                switch (s)
                {
                    case 1: { long n = (short)R[0]; long q = n / d; if (q != (sbyte)q) throw c.De(); c.SetReg(0, 2, (((ulong)(n % d) & 0xFF) << 8) | ((ulong)q & 0xFF)); break; }
                    case 2: { long n = (int)(((uint)(ushort)R[2] << 16) | (ushort)R[0]); long q = n / d; if (q != (short)q) throw c.De(); c.SetReg(0, 2, (ulong)q); c.SetReg(2, 2, (ulong)(n % d)); break; }
                    case 4:
                    {
                        long n = (long)(((ulong)(uint)R[2] << 32) | (uint)R[0]);
                        if (n == long.MinValue && d == -1) throw c.De();
                        long q = n / d; if (q != (int)q) throw c.De(); R[0] = (uint)q; R[2] = (uint)(n % d); break;
                    }
                    default:
                    {
                        Int128 n = (Int128)(((UInt128)R[2] << 64) | R[0]);
                        if (d == -1 && n == Int128.MinValue) throw c.De();
                        Int128 q = n / d;
                        if (q > long.MaxValue || q < long.MinValue) throw c.De();
                        R[0] = (ulong)(long)q; R[2] = (ulong)(long)(n % d); break;
                    }
                }
                break;
            }
        }
    }

    /// <summary>Two- and three-operand IMUL: Reg = (Rm or memory) * (Imm when op.Cc = 1, else Reg).</summary>
    public static void ImulR(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong b = c.GetReg(op.Rm, s);
        c.SetReg(op.Reg, s, Imul(c, op.Cc != 0 ? op.Imm : c.GetReg(op.Reg, s), b, s));
    }

    public static void ImulM(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong b = c.ReadMem(c.Ea(ref op), s);
        c.SetReg(op.Reg, s, Imul(c, op.Cc != 0 ? op.Imm : c.GetReg(op.Reg, s), b, s));
    }

    private static ulong Imul(X86Cpu c, ulong x, ulong y, int s)
    {
        long a = X86Cpu.SignExtend(x, s), b = X86Cpu.SignExtend(y, s);
        ulong r;
        bool overflow;
        if (s == 8)
        {
            if (a == (int)a && b == (int)b)
            {
                // Both fit 32 bits signed, so the product fits 63: no 128-bit multiply (indexing, sizes).
                r = (ulong)(a * b);
                overflow = false;
            }
            else
            {
                long hi = SignedMulHigh(a, b, out long lo);
                r = (ulong)lo;
                overflow = hi != (lo >> 63);
            }
        }
        else
        {
            long p = a * b;
            r = (ulong)p & X86Cpu.SizeMask(s);
            overflow = p != X86Cpu.SignExtend((ulong)p, s);
        }
        c.SetEager(ResultFlags(r, s) | (overflow ? X86Cpu.CF | X86Cpu.OF : 0));
        return r;
    }

    /// <summary>
    /// The high half of a 64x64-bit product. Math.BigMul does this with MULX only when the build targets BMI2; the
    /// native binary targets baseline x86-64, where it calls a software fallback through two calls per MUL (RSA in
    /// the guest kernel's module-signature checks is made of these): the same four 32-bit products, inlined.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong MulHigh(ulong a, ulong b, out ulong lo)
    {
        ulong aL = (uint)a, aH = a >> 32, bL = (uint)b, bH = b >> 32;
        ulong ll = aL * bL, lh = aL * bH, hl = aH * bL, hh = aH * bH;
        ulong mid = (ll >> 32) + (uint)lh + (uint)hl;
        lo = (mid << 32) | (uint)ll;
        return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    }

    /// <summary>Signed high half: the unsigned one corrected for each negative operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static long SignedMulHigh(long a, long b, out long lo)
    {
        ulong hi = MulHigh((ulong)a, (ulong)b, out ulong l);
        lo = (long)l;
        return (long)hi - ((a >> 63) & b) - ((b >> 63) & a);
    }

    // ---------------------------------------------------------------- bit operations

    /// <summary>BT/BTS/BTR/BTC on a register; op.Cc 0..3; op.Size2 = 1 when the bit offset is an immediate.</summary>
    public static void BitTestR(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        int bit = (int)((op.Size2 != 0 ? op.Imm : c.GetReg(op.Rm, s)) & (ulong)(s * 8 - 1));
        ulong v = c.GetReg(op.Reg, s);
        ulong nv = BitOp(c, op.Cc, v, bit);
        if (op.Cc != 0) c.SetReg(op.Reg, s, nv);
    }

    public static void BitTestM(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong la = c.Ea(ref op);
        int bit;
        if (op.Size2 != 0) bit = (int)(op.Imm & (ulong)(s * 8 - 1));
        else
        {
            // A register bit offset addresses a bit string: signed, and may reach outside the operand.
            long off = X86Cpu.SignExtend(c.GetReg(op.Rm, s), s);
            la = (la + (ulong)((off >> (s == 8 ? 6 : s == 4 ? 5 : 4)) * s)) & c.LinMask;
            bit = (int)(off & (s * 8 - 1));
        }
        if (op.Cc != 0 && (op.Flags & OpFlags.Lock) != 0)
        {
            byte* p = c.HostForAtomic(la, s);
            if (p != null && s >= 4)
            {
                ulong mask = 1UL << bit;
                ulong old = s == 8
                    ? op.Cc switch { 1 => Interlocked.Or(ref *(ulong*)p, mask), 2 => Interlocked.And(ref *(ulong*)p, ~mask), _ => XorAtomic64((ulong*)p, mask) }
                    : op.Cc switch { 1 => Interlocked.Or(ref *(uint*)p, (uint)mask), 2 => Interlocked.And(ref *(uint*)p, ~(uint)mask), _ => XorAtomic32((uint*)p, (uint)mask) };
                BitOp(c, 0, old, bit);
                return;
            }
            lock (c.AtomicLock) { ulong v0 = c.ReadMem(la, s); c.WriteMem(la, s, BitOp(c, op.Cc, v0, bit)); }
            return;
        }
        ulong v = c.ReadMem(la, s);
        ulong nv = BitOp(c, op.Cc, v, bit);
        if (op.Cc != 0) c.WriteMem(la, s, nv);
    }

    private static ulong XorAtomic64(ulong* p, ulong mask)
    {
        while (true) { ulong o = Volatile.Read(ref *p); if (Interlocked.CompareExchange(ref *p, o ^ mask, o) == o) return o; }
    }

    private static uint XorAtomic32(uint* p, uint mask)
    {
        while (true) { uint o = Volatile.Read(ref *p); if (Interlocked.CompareExchange(ref *p, o ^ mask, o) == o) return o; }
    }

    private static ulong BitOp(X86Cpu c, int kind, ulong v, int bit)
    {
        ulong mask = 1UL << bit;
        ulong f = c.ComputeArith() & ~X86Cpu.CF;
        if ((v & mask) != 0) f |= X86Cpu.CF;
        c.SetEager(f);
        return kind switch { 1 => v | mask, 2 => v & ~mask, 3 => v ^ mask, _ => v };
    }

    /// <summary>op.Cc: 0 BSF, 1 BSR, 2 TZCNT, 3 LZCNT, 4 POPCNT.</summary>
    public static void BitScanR(X86Cpu c, ref Op op) => BitScan(c, ref op, c.GetReg(op.Rm, op.Size));

    public static void BitScanM(X86Cpu c, ref Op op) => BitScan(c, ref op, c.ReadMem(c.Ea(ref op), op.Size));

    private static void BitScan(X86Cpu c, ref Op op, ulong src)
    {
        int s = op.Size, bits = s * 8;
        src &= X86Cpu.SizeMask(s);
        switch (op.Cc)
        {
            case 0:
            case 1:
                if (src == 0) { c.SetEager(X86Cpu.ZF); return; }
                c.SetReg(op.Reg, s, (ulong)(op.Cc == 0 ? BitOperations.TrailingZeroCount(src) : 63 - BitOperations.LeadingZeroCount(src)));
                c.SetEager(0);
                return;
            case 2:
            case 3:
            {
                ulong r = src == 0 ? (ulong)bits : op.Cc == 2 ? (ulong)BitOperations.TrailingZeroCount(src) : (ulong)(BitOperations.LeadingZeroCount(src) - (64 - bits));
                c.SetReg(op.Reg, s, r);
                c.SetEager((src == 0 ? X86Cpu.CF : 0) | (r == 0 ? X86Cpu.ZF : 0));
                return;
            }
            default:
                c.SetReg(op.Reg, s, (ulong)BitOperations.PopCount(src));
                c.SetEager(src == 0 ? X86Cpu.ZF : 0);
                return;
        }
    }

    public static void Bswap(X86Cpu c, ref Op op)
    {
        if (op.Size == 8) c.R[op.Reg] = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(c.R[op.Reg]);
        else if (op.Size == 4) c.R[op.Reg] = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)c.R[op.Reg]);
        else c.SetReg(op.Reg, 2, 0); // BSWAP of a 16-bit register is undefined; hardware yields zero
    }

    public static void MovbeRM(X86Cpu c, ref Op op)
    {
        ulong v = c.ReadMem(c.Ea(ref op), op.Size);
        c.SetReg(op.Reg, op.Size, Swap(v, op.Size));
    }

    public static void MovbeMR(X86Cpu c, ref Op op) => c.WriteMem(c.Ea(ref op), op.Size, Swap(c.GetReg(op.Reg, op.Size), op.Size));

    private static ulong Swap(ulong v, int s) => s switch
    {
        8 => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v),
        4 => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)v),
        _ => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((ushort)v),
    };
}
