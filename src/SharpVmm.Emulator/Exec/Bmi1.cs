namespace SharpVmm.Emulator;

/// <summary>
/// BMI1 (VEX-encoded): ANDN, BEXTR, BLSI, BLSMSK, BLSR; TZCNT shares the bit-scan handler. op.Reg = destination,
/// op.Rm = the operand that is always a register (ANDN's first source, BEXTR's control), op.Size2 = the r/m
/// operand's register when it is not memory. Flags per the SDM; AF/PF (and SF for BEXTR) are undefined, left 0.
/// </summary>
internal static unsafe partial class Handlers
{
    /// <summary>op.Cc: 0 ANDN, 1 BEXTR, 2 BLSI, 3 BLSMSK, 4 BLSR.</summary>
    public static void Bmi1(X86Cpu c, ref Op op)
    {
        int s = op.Size, bits = s * 8;
        ulong m = X86Cpu.SizeMask(s);
        ulong rm = (op.Flags & OpFlags.Mem) != 0 ? c.ReadMem(c.Ea(ref op), s) : c.GetReg(op.Size2, s);
        ulong r, f;
        switch (op.Cc)
        {
            case 0:
                r = ~c.GetReg(op.Rm, s) & rm & m;
                f = ZeroSign(r, bits);
                break;
            case 1:
            {
                ulong ctl = c.GetReg(op.Rm, s);
                int start = (int)(ctl & 0xFF), len = (int)((ctl >> 8) & 0xFF);
                r = start >= bits ? 0 : rm >> start;
                if (len < 64) r &= (1UL << len) - 1;
                r &= m;
                f = r == 0 ? X86Cpu.ZF : 0;
                break;
            }
            case 2:
                r = (0 - rm) & rm & m;
                f = ZeroSign(r, bits) | (rm != 0 ? X86Cpu.CF : 0);
                break;
            case 3:
                r = ((rm - 1) ^ rm) & m;
                f = (ZeroSign(r, bits) & X86Cpu.SF) | (rm == 0 ? X86Cpu.CF : 0);
                break;
            default:
                r = ((rm - 1) & rm) & m;
                f = ZeroSign(r, bits) | (rm == 0 ? X86Cpu.CF : 0);
                break;
        }
        c.SetReg(op.Reg, s, r);
        c.SetEager(f);
    }

    private static ulong ZeroSign(ulong r, int bits) => (r == 0 ? X86Cpu.ZF : 0) | (((r >> (bits - 1)) & 1) != 0 ? X86Cpu.SF : 0);
}
