using Iced.Intel;

namespace SharpVmm.Emulator;

/// <summary>
/// x87 through the slow path (it is rare in the guests we run): loads, stores, integer conversions, the basic
/// arithmetic, compares, control/status word handling. Values are doubles; 80-bit memory operands are converted.
/// </summary>
internal static unsafe partial class Handlers
{
    public static void X87Op(X86Cpu c, ref Op op)
    {
        ref Instruction ins = ref c.CurBlock!.Instrs[(int)op.Imm2];
        var m = ins.Mnemonic;
        bool mem = (op.Flags & OpFlags.Mem) != 0;
        switch (m)
        {
            case Mnemonic.Fninit: c.Fcw = 0x37F; c.Fsw = 0; c.Ftw = 0; return;
            case Mnemonic.Fnclex: c.Fsw &= 0x7F00; return;
            case Mnemonic.Wait: case Mnemonic.Fnop: return;
            case Mnemonic.Fldcw: c.Fcw = c.Read16(c.Ea(ref op)); return;
            case Mnemonic.Fnstcw: c.Write16(c.Ea(ref op), c.Fcw); return;
            case Mnemonic.Fnstsw:
                if (mem) c.Write16(c.Ea(ref op), c.Fsw); else c.SetReg(0, 2, c.Fsw);
                return;
            case Mnemonic.Fld:
                Push(c, mem ? LoadFloat(c, ref op, ins.MemorySize.GetSize()) : St(c, StIndex(ref ins, 0)));
                return;
            case Mnemonic.Fild:
                Push(c, X86Cpu.SignExtend(c.ReadMem(c.Ea(ref op), ins.MemorySize.GetSize()), ins.MemorySize.GetSize()));
                return;
            case Mnemonic.Fld1: Push(c, 1.0); return;
            case Mnemonic.Fldz: Push(c, 0.0); return;
            case Mnemonic.Fldpi: Push(c, Math.PI); return;
            case Mnemonic.Fldl2e: Push(c, 1.4426950408889634); return;
            case Mnemonic.Fldln2: Push(c, 0.6931471805599453); return;
            case Mnemonic.Fldl2t: Push(c, 3.321928094887362); return;
            case Mnemonic.Fldlg2: Push(c, 0.3010299956639812); return;
            case Mnemonic.Fst:
            case Mnemonic.Fstp:
                if (mem) StoreFloat(c, ref op, ins.MemorySize.GetSize(), St(c, 0));
                else SetSt(c, StIndex(ref ins, 0), St(c, 0));
                if (m == Mnemonic.Fstp) Pop(c);
                return;
            case Mnemonic.Fist:
            case Mnemonic.Fistp:
            case Mnemonic.Fisttp:
            {
                int size = ins.MemorySize.GetSize();
                double v = St(c, 0);
                v = m == Mnemonic.Fisttp ? Math.Truncate(v) : RoundByControl(c.Fcw, v);
                double lim = size == 2 ? 32768.0 : size == 4 ? 2147483648.0 : 9.2233720368547758E18;
                ulong iv = double.IsNaN(v) || v >= lim || v < -lim ? 1UL << (size * 8 - 1) : (ulong)(long)v;
                c.WriteMem(c.Ea(ref op), size, iv);
                if (m != Mnemonic.Fist) Pop(c);
                return;
            }
            case Mnemonic.Fadd: case Mnemonic.Faddp: case Mnemonic.Fiadd:
            case Mnemonic.Fsub: case Mnemonic.Fsubp: case Mnemonic.Fisub:
            case Mnemonic.Fsubr: case Mnemonic.Fsubrp: case Mnemonic.Fisubr:
            case Mnemonic.Fmul: case Mnemonic.Fmulp: case Mnemonic.Fimul:
            case Mnemonic.Fdiv: case Mnemonic.Fdivp: case Mnemonic.Fidiv:
            case Mnemonic.Fdivr: case Mnemonic.Fdivrp: case Mnemonic.Fidivr:
                Arith(c, ref op, ref ins);
                return;
            case Mnemonic.Fchs: SetSt(c, 0, -St(c, 0)); return;
            case Mnemonic.Fabs: SetSt(c, 0, Math.Abs(St(c, 0))); return;
            case Mnemonic.Fsqrt: SetSt(c, 0, Math.Sqrt(St(c, 0))); return;
            case Mnemonic.Frndint: SetSt(c, 0, RoundByControl(c.Fcw, St(c, 0))); return;
            case Mnemonic.Fxch:
            {
                int i = ins.OpCount > 0 ? StIndex(ref ins, ins.OpCount - 1) : 1;
                double t = St(c, 0);
                SetSt(c, 0, St(c, i));
                SetSt(c, i, t);
                return;
            }
            case Mnemonic.Ffree:
                c.Ftw &= (byte)~(1 << ((c.FpuTop + StIndex(ref ins, 0)) & 7));
                return;
            case Mnemonic.Fincstp: c.FpuTop = c.FpuTop + 1; return;
            case Mnemonic.Fdecstp: c.FpuTop = c.FpuTop - 1; return;
            case Mnemonic.Fcom: case Mnemonic.Fcomp: case Mnemonic.Fcompp:
            case Mnemonic.Fucom: case Mnemonic.Fucomp: case Mnemonic.Fucompp: case Mnemonic.Ftst:
            {
                double b = m == Mnemonic.Ftst ? 0.0 : mem ? LoadFloat(c, ref op, ins.MemorySize.GetSize())
                    : ins.OpCount > 1 ? St(c, StIndex(ref ins, 1)) : ins.OpCount == 1 ? St(c, StIndex(ref ins, 0)) : St(c, 1);
                double a = St(c, 0);
                ushort cc = double.IsNaN(a) || double.IsNaN(b) ? (ushort)0x4500 : a < b ? (ushort)0x0100 : a == b ? (ushort)0x4000 : (ushort)0;
                c.Fsw = (ushort)((c.Fsw & ~0x4700) | cc);
                if (m is Mnemonic.Fcomp or Mnemonic.Fucomp) Pop(c);
                if (m is Mnemonic.Fcompp or Mnemonic.Fucompp) { Pop(c); Pop(c); }
                return;
            }
            case Mnemonic.Fcomi: case Mnemonic.Fcomip: case Mnemonic.Fucomi: case Mnemonic.Fucomip:
            {
                double a = St(c, 0), b = St(c, StIndex(ref ins, 1));
                ulong f = double.IsNaN(a) || double.IsNaN(b) ? X86Cpu.ZF | X86Cpu.PF | X86Cpu.CF : a < b ? X86Cpu.CF : a == b ? X86Cpu.ZF : 0;
                c.SetEager(f);
                if (m is Mnemonic.Fcomip or Mnemonic.Fucomip) Pop(c);
                return;
            }
            case Mnemonic.Fxam:
            {
                double a = St(c, 0);
                bool empty = (c.Ftw & (1 << c.FpuTop)) == 0;
                ushort cc = empty ? (ushort)0x4100 : double.IsNaN(a) ? (ushort)0x0100 : double.IsInfinity(a) ? (ushort)0x0500
                    : a == 0 ? (ushort)0x4000 : (ushort)0x0400;
                if (double.IsNegative(a)) cc |= 0x0200;
                c.Fsw = (ushort)((c.Fsw & ~0x4700) | cc);
                return;
            }
        }
        c.LogUnimplemented(m.ToString().ToLowerInvariant());
        throw c.Ud();
    }

    private static int StIndex(ref Instruction ins, int operand) => ins.GetOpRegister(operand) - Register.ST0;

    private static double St(X86Cpu c, int i) => c.Fpr[(c.FpuTop + i) & 7];

    private static void SetSt(X86Cpu c, int i, double v)
    {
        int p = (c.FpuTop + i) & 7;
        c.Fpr[p] = v;
        c.Ftw |= (byte)(1 << p);
    }

    private static void Push(X86Cpu c, double v)
    {
        c.FpuTop = c.FpuTop - 1;
        SetSt(c, 0, v);
    }

    private static void Pop(X86Cpu c)
    {
        c.Ftw &= (byte)~(1 << c.FpuTop);
        c.FpuTop = c.FpuTop + 1;
    }

    private static double LoadFloat(X86Cpu c, ref Op op, int size)
    {
        ulong la = c.Ea(ref op);
        switch (size)
        {
            case 4: return BitConverter.UInt32BitsToSingle(c.Read32(la));
            case 8: return BitConverter.UInt64BitsToDouble(c.Read64(la));
            default:
            {
                Span<byte> b = stackalloc byte[10];
                for (int i = 0; i < 10; i++) b[i] = c.Read8((la + (ulong)i) & c.LinMask);
                return X86Cpu.FromExtended(b);
            }
        }
    }

    private static void StoreFloat(X86Cpu c, ref Op op, int size, double v)
    {
        ulong la = c.Ea(ref op);
        switch (size)
        {
            case 4: c.Write32(la, BitConverter.SingleToUInt32Bits((float)v)); return;
            case 8: c.Write64(la, BitConverter.DoubleToUInt64Bits(v)); return;
            default:
            {
                c.Translate((la + 9) & c.LinMask, X86Cpu.AccWrite, c.UserBit != 0);
                Span<byte> b = stackalloc byte[10];
                X86Cpu.ToExtended(v, b);
                for (int i = 0; i < 10; i++) c.Write8((la + (ulong)i) & c.LinMask, b[i]);
                return;
            }
        }
    }

    private static double RoundByControl(ushort fcw, double v) => ((fcw >> 10) & 3) switch
    {
        0 => Math.Round(v, MidpointRounding.ToEven),
        1 => Math.Floor(v),
        2 => Math.Ceiling(v),
        _ => Math.Truncate(v),
    };

    private static void Arith(X86Cpu c, ref Op op, ref Instruction ins)
    {
        var m = ins.Mnemonic;
        bool mem = (op.Flags & OpFlags.Mem) != 0;
        bool pop = m is Mnemonic.Faddp or Mnemonic.Fsubp or Mnemonic.Fsubrp or Mnemonic.Fmulp or Mnemonic.Fdivp or Mnemonic.Fdivrp;
        bool intOp = m is Mnemonic.Fiadd or Mnemonic.Fisub or Mnemonic.Fisubr or Mnemonic.Fimul or Mnemonic.Fidiv or Mnemonic.Fidivr;
        int dst;
        double a, b;
        if (mem)
        {
            int size = ins.MemorySize.GetSize();
            b = intOp ? X86Cpu.SignExtend(c.ReadMem(c.Ea(ref op), size), size) : LoadFloat(c, ref op, size);
            dst = 0;
            a = St(c, 0);
        }
        else if (ins.OpCount == 2)
        {
            dst = StIndex(ref ins, 0);
            a = St(c, dst);
            b = St(c, StIndex(ref ins, 1));
        }
        else
        {
            dst = ins.OpCount == 1 ? StIndex(ref ins, 0) : 1;
            a = St(c, dst);
            b = St(c, 0);
        }
        double r = m switch
        {
            Mnemonic.Fadd or Mnemonic.Faddp or Mnemonic.Fiadd => a + b,
            Mnemonic.Fsub or Mnemonic.Fsubp or Mnemonic.Fisub => a - b,
            Mnemonic.Fsubr or Mnemonic.Fsubrp or Mnemonic.Fisubr => b - a,
            Mnemonic.Fmul or Mnemonic.Fmulp or Mnemonic.Fimul => a * b,
            Mnemonic.Fdiv or Mnemonic.Fdivp or Mnemonic.Fidiv => a / b,
            _ => b / a,
        };
        SetSt(c, dst, r);
        if (pop) Pop(c);
    }
}
