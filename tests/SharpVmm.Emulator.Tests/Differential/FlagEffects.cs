using Iced.Intel;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// Which RFLAGS bits an instruction writes and which it leaves architecturally undefined, in x86 bit positions.
/// Iced's per-instruction tables are used as they are, except for shifts and rotates, whose effects depend on
/// the masked count (an immediate or CL): count 0 changes nothing, OF is defined only for a count of 1, CF is
/// undefined for SHL/SHR counts at or past the operand width, and a rotate by a multiple of its width still
/// writes CF and leaves OF undefined (the SDM's pseudocode; Iced's table says "no flags" for RCL al,9).
/// </summary>
internal static class FlagEffects
{
    public static ulong ToX86(RflagsBits b)
    {
        ulong f = 0;
        if ((b & RflagsBits.CF) != 0) f |= CpuSnapshot.CF;
        if ((b & RflagsBits.PF) != 0) f |= CpuSnapshot.PF;
        if ((b & RflagsBits.AF) != 0) f |= CpuSnapshot.AF;
        if ((b & RflagsBits.ZF) != 0) f |= CpuSnapshot.ZF;
        if ((b & RflagsBits.SF) != 0) f |= CpuSnapshot.SF;
        if ((b & RflagsBits.OF) != 0) f |= CpuSnapshot.OF;
        if ((b & RflagsBits.DF) != 0) f |= CpuSnapshot.DF;
        return f;
    }

    public static bool IsShiftOrRotate(Mnemonic m) => m is Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr or Mnemonic.Sar
        or Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr or Mnemonic.Shld or Mnemonic.Shrd;

    /// <summary>Operand width in bits of a shift's destination.</summary>
    public static int Width(in Instruction ins) =>
        ins.Op0Kind == OpKind.Register ? ins.Op0Register.GetSize() * 8 : ins.MemorySize.GetSize() * 8;

    /// <summary>The raw (unmasked) count operand of a shift or rotate.</summary>
    public static ulong RawCount(in Instruction ins, CaseContext ctx)
    {
        int last = ins.OpCount - 1;
        return ins.GetOpKind(last) == OpKind.Register ? ctx.Value(ins.GetOpRegister(last)) : ins.GetImmediate(last);
    }

    public static int MaskedCount(in Instruction ins, CaseContext ctx) =>
        (int)(RawCount(ins, ctx) & (Width(ins) == 64 ? 63UL : 31UL));

    /// <summary>(written or undefined, undefined) for <paramref name="ins"/> executed in the current state of <paramref name="ctx"/>.</summary>
    public static (ulong Modified, ulong Undefined) Of(in Instruction ins, CaseContext ctx)
    {
        var m = ins.Mnemonic;
        if (!IsShiftOrRotate(m)) return (ToX86(ins.RflagsModified), ToX86(ins.RflagsUndefined));

        const ulong all = CpuSnapshot.StatusFlags;
        int width = Width(ins), count = MaskedCount(ins, ctx);
        if (count == 0) return (0, 0);
        ulong of = count == 1 ? 0 : CpuSnapshot.OF;
        switch (m)
        {
            case Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr:
                return (CpuSnapshot.CF | CpuSnapshot.OF, of);
            case Mnemonic.Shld or Mnemonic.Shrd:
                return count > width ? (all, all) : (all, CpuSnapshot.AF | of);
            default:
                ulong cf = m != Mnemonic.Sar && count >= width ? CpuSnapshot.CF : 0;
                return (all, CpuSnapshot.AF | of | cf);
        }
    }
}
