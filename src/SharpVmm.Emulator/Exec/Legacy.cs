namespace SharpVmm.Emulator;

/// <summary>
/// Instructions that exist only outside 64-bit mode: decimal adjust (DAA/DAS/AAA/AAS/AAM/AAD), BOUND, ARPL, SALC.
/// Semantics from the SDM pseudo-code; flags the SDM leaves undefined are cleared.
/// </summary>
internal static unsafe partial class Handlers
{
    private static ulong SzpOf(byte v)
    {
        ulong f = 0;
        if (v == 0) f |= X86Cpu.ZF;
        if ((v & 0x80) != 0) f |= X86Cpu.SF;
        if ((System.Numerics.BitOperations.PopCount(v) & 1) == 0) f |= X86Cpu.PF;
        return f;
    }

    /// <summary>DAA (op.Cc 0) and DAS (op.Cc 1).</summary>
    public static void DecimalAdjust(X86Cpu c, ref Op op)
    {
        ulong f = c.ComputeArith();
        byte oldAl = (byte)c.R[0];
        bool oldCf = (f & X86Cpu.CF) != 0;
        bool sub = op.Cc != 0;
        int al = oldAl;
        bool cf = false, af = false;
        if ((al & 0xF) > 9 || (f & X86Cpu.AF) != 0)
        {
            int adj = sub ? al - 6 : al + 6;
            cf = oldCf || adj < 0 || adj > 0xFF;
            al = adj & 0xFF;
            af = true;
        }
        if (oldAl > 0x99 || oldCf)
        {
            al = (sub ? al - 0x60 : al + 0x60) & 0xFF;
            cf = true;
        }
        else if (!sub) cf = false;
        c.SetReg(0, 1, (ulong)al);
        c.SetEager(SzpOf((byte)al) | (cf ? X86Cpu.CF : 0) | (af ? X86Cpu.AF : 0));
    }

    /// <summary>AAA (op.Cc 0) and AAS (op.Cc 1).</summary>
    public static void AsciiAdjust(X86Cpu c, ref Op op)
    {
        ulong f = c.ComputeArith();
        ushort ax = (ushort)c.R[0];
        bool adjust = (ax & 0xF) > 9 || (f & X86Cpu.AF) != 0;
        if (adjust)
        {
            if (op.Cc == 0) ax = (ushort)(ax + 0x106);
            else ax = (ushort)(ax - 6 - 0x100); // SDM: AX ← AX − 6 (borrowing into AH), then AH ← AH − 1
        }
        ax = (ushort)(ax & 0xFF0F);
        c.SetReg(0, 2, ax);
        ulong nf = SzpOf((byte)ax);
        c.SetEager(adjust ? nf | X86Cpu.AF | X86Cpu.CF : nf);
    }

    /// <summary>AAM imm8: AH = AL / imm8, AL = AL % imm8; #DE when imm8 is 0.</summary>
    public static void Aam(X86Cpu c, ref Op op)
    {
        byte b = (byte)op.Imm;
        if (b == 0) throw c.De();
        byte al = (byte)c.R[0];
        byte r = (byte)(al % b);
        c.SetReg(0, 2, ((ulong)(al / b) << 8) | r);
        c.SetEager(SzpOf(r));
    }

    /// <summary>AAD imm8: AL = AL + AH * imm8, AH = 0.</summary>
    public static void Aad(X86Cpu c, ref Op op)
    {
        ushort ax = (ushort)c.R[0];
        byte r = (byte)((ax & 0xFF) + (ax >> 8) * (int)(byte)op.Imm);
        c.SetReg(0, 2, r);
        c.SetEager(SzpOf(r));
    }

    /// <summary>SALC (undocumented, D6): AL = CF ? FF : 00, flags untouched.</summary>
    public static void Salc(X86Cpu c, ref Op op) => c.SetReg(0, 1, c.GetCf() ? 0xFFUL : 0);

    /// <summary>BOUND r16/r32, m16&amp;16/m32&amp;32: #BR (a fault) when the signed index is outside [lower, upper].</summary>
    public static void Bound(X86Cpu c, ref Op op)
    {
        int s = op.Size;
        ulong la = c.Ea(ref op);
        long lower = X86Cpu.SignExtend(c.ReadMem(la, s), s);
        long upper = X86Cpu.SignExtend(c.ReadMem((la + (ulong)s) & c.LinMask, s), s);
        long index = X86Cpu.SignExtend(c.GetReg(op.Reg, s), s);
        if (index < lower || index > upper) throw c.Fault(5);
    }

    /// <summary>ARPL r/m16, r16 (protected mode only): raises the destination selector's RPL to the source's.</summary>
    public static void Arpl(X86Cpu c, ref Op op)
    {
        if (!c.ProtectedMode) throw c.Ud();
        bool mem = (op.Flags & OpFlags.Mem) != 0;
        ulong la = mem ? c.Ea(ref op) : 0;
        ushort dst = mem ? c.Read16(la) : (ushort)c.GetReg(op.Reg, 2);
        ushort src = (ushort)c.GetReg(mem ? op.Reg : op.Rm, 2);
        ulong f = c.ComputeArith() & ~X86Cpu.ZF;
        if ((dst & 3) < (src & 3))
        {
            dst = (ushort)((dst & ~3) | (src & 3));
            if (mem) c.Write16(la, dst); else c.SetReg(op.Reg, 2, dst);
            f |= X86Cpu.ZF;
        }
        c.SetEager(f);
    }
}
