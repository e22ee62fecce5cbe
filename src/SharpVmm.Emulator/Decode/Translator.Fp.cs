using Iced.Intel;
using static SharpVmm.Emulator.Handlers;

namespace SharpVmm.Emulator;

internal sealed unsafe partial class Translator
{
    private static readonly Dictionary<Mnemonic, SseKind> SseBinary = new()
    {
        [Mnemonic.Pand] = SseKind.And, [Mnemonic.Andps] = SseKind.And, [Mnemonic.Andpd] = SseKind.And,
        [Mnemonic.Pandn] = SseKind.AndN, [Mnemonic.Andnps] = SseKind.AndN, [Mnemonic.Andnpd] = SseKind.AndN,
        [Mnemonic.Por] = SseKind.Or, [Mnemonic.Orps] = SseKind.Or, [Mnemonic.Orpd] = SseKind.Or,
        [Mnemonic.Pxor] = SseKind.Xor, [Mnemonic.Xorps] = SseKind.Xor, [Mnemonic.Xorpd] = SseKind.Xor,
        [Mnemonic.Paddb] = SseKind.AddB, [Mnemonic.Paddw] = SseKind.AddW, [Mnemonic.Paddd] = SseKind.AddD, [Mnemonic.Paddq] = SseKind.AddQ,
        [Mnemonic.Psubb] = SseKind.SubB, [Mnemonic.Psubw] = SseKind.SubW, [Mnemonic.Psubd] = SseKind.SubD, [Mnemonic.Psubq] = SseKind.SubQ,
        [Mnemonic.Paddsb] = SseKind.AddsB, [Mnemonic.Paddsw] = SseKind.AddsW, [Mnemonic.Paddusb] = SseKind.AddusB, [Mnemonic.Paddusw] = SseKind.AddusW,
        [Mnemonic.Psubsb] = SseKind.SubsB, [Mnemonic.Psubsw] = SseKind.SubsW, [Mnemonic.Psubusb] = SseKind.SubusB, [Mnemonic.Psubusw] = SseKind.SubusW,
        [Mnemonic.Pcmpeqb] = SseKind.CmpeqB, [Mnemonic.Pcmpeqw] = SseKind.CmpeqW, [Mnemonic.Pcmpeqd] = SseKind.CmpeqD,
        [Mnemonic.Pcmpgtb] = SseKind.CmpgtB, [Mnemonic.Pcmpgtw] = SseKind.CmpgtW, [Mnemonic.Pcmpgtd] = SseKind.CmpgtD,
        [Mnemonic.Pminub] = SseKind.MinUB, [Mnemonic.Pmaxub] = SseKind.MaxUB, [Mnemonic.Pminsw] = SseKind.MinSW, [Mnemonic.Pmaxsw] = SseKind.MaxSW,
        [Mnemonic.Pavgb] = SseKind.AvgB, [Mnemonic.Pavgw] = SseKind.AvgW,
        [Mnemonic.Pmullw] = SseKind.MulLW, [Mnemonic.Pmulhw] = SseKind.MulHW, [Mnemonic.Pmulhuw] = SseKind.MulHUW, [Mnemonic.Pmuludq] = SseKind.MulUDQ,
        [Mnemonic.Pmaddwd] = SseKind.MaddWD, [Mnemonic.Psadbw] = SseKind.SadBW,
        [Mnemonic.Packsswb] = SseKind.PackSSWB, [Mnemonic.Packssdw] = SseKind.PackSSDW, [Mnemonic.Packuswb] = SseKind.PackUSWB,
        [Mnemonic.Punpcklbw] = SseKind.UnpckLBW, [Mnemonic.Punpcklwd] = SseKind.UnpckLWD, [Mnemonic.Punpckldq] = SseKind.UnpckLDQ, [Mnemonic.Punpcklqdq] = SseKind.UnpckLQDQ,
        [Mnemonic.Punpckhbw] = SseKind.UnpckHBW, [Mnemonic.Punpckhwd] = SseKind.UnpckHWD, [Mnemonic.Punpckhdq] = SseKind.UnpckHDQ, [Mnemonic.Punpckhqdq] = SseKind.UnpckHQDQ,
        [Mnemonic.Psllw] = SseKind.SllW, [Mnemonic.Pslld] = SseKind.SllD, [Mnemonic.Psllq] = SseKind.SllQ,
        [Mnemonic.Psrlw] = SseKind.SrlW, [Mnemonic.Psrld] = SseKind.SrlD, [Mnemonic.Psrlq] = SseKind.SrlQ,
        [Mnemonic.Psraw] = SseKind.SraW, [Mnemonic.Psrad] = SseKind.SraD, [Mnemonic.Pslldq] = SseKind.SllDQ, [Mnemonic.Psrldq] = SseKind.SrlDQ,
        [Mnemonic.Pshufd] = SseKind.ShufD, [Mnemonic.Pshuflw] = SseKind.ShufLW, [Mnemonic.Pshufhw] = SseKind.ShufHW,
        [Mnemonic.Addps] = SseKind.AddPS, [Mnemonic.Addss] = SseKind.AddSS, [Mnemonic.Addpd] = SseKind.AddPD, [Mnemonic.Addsd] = SseKind.AddSD,
        [Mnemonic.Subps] = SseKind.SubPS, [Mnemonic.Subss] = SseKind.SubSS, [Mnemonic.Subpd] = SseKind.SubPD, [Mnemonic.Subsd] = SseKind.SubSD,
        [Mnemonic.Mulps] = SseKind.MulPS, [Mnemonic.Mulss] = SseKind.MulSS, [Mnemonic.Mulpd] = SseKind.MulPD, [Mnemonic.Mulsd] = SseKind.MulSD,
        [Mnemonic.Divps] = SseKind.DivPS, [Mnemonic.Divss] = SseKind.DivSS, [Mnemonic.Divpd] = SseKind.DivPD, [Mnemonic.Divsd] = SseKind.DivSD,
        [Mnemonic.Minps] = SseKind.MinPS, [Mnemonic.Minss] = SseKind.MinSS, [Mnemonic.Minpd] = SseKind.MinPD, [Mnemonic.Minsd] = SseKind.MinSD,
        [Mnemonic.Maxps] = SseKind.MaxPS, [Mnemonic.Maxss] = SseKind.MaxSS, [Mnemonic.Maxpd] = SseKind.MaxPD, [Mnemonic.Maxsd] = SseKind.MaxSD,
        [Mnemonic.Sqrtps] = SseKind.SqrtPS, [Mnemonic.Sqrtss] = SseKind.SqrtSS, [Mnemonic.Sqrtpd] = SseKind.SqrtPD, [Mnemonic.Sqrtsd] = SseKind.SqrtSD,
        [Mnemonic.Rcpps] = SseKind.RcpPS, [Mnemonic.Rcpss] = SseKind.RcpSS, [Mnemonic.Rsqrtps] = SseKind.RsqrtPS, [Mnemonic.Rsqrtss] = SseKind.RsqrtSS,
        [Mnemonic.Cmpps] = SseKind.CmpPS, [Mnemonic.Cmpss] = SseKind.CmpSS, [Mnemonic.Cmppd] = SseKind.CmpPD, [Mnemonic.Cmpsd] = SseKind.CmpSD,
        [Mnemonic.Shufps] = SseKind.ShufPS, [Mnemonic.Shufpd] = SseKind.ShufPD,
        [Mnemonic.Unpcklps] = SseKind.UnpckLPS, [Mnemonic.Unpckhps] = SseKind.UnpckHPS, [Mnemonic.Unpcklpd] = SseKind.UnpckLPD, [Mnemonic.Unpckhpd] = SseKind.UnpckHPD,
        [Mnemonic.Cvtdq2ps] = SseKind.CvtDQ2PS, [Mnemonic.Cvtps2dq] = SseKind.CvtPS2DQ, [Mnemonic.Cvttps2dq] = SseKind.CvtTPS2DQ,
        [Mnemonic.Cvtdq2pd] = SseKind.CvtDQ2PD, [Mnemonic.Cvtpd2dq] = SseKind.CvtPD2DQ, [Mnemonic.Cvttpd2dq] = SseKind.CvtTPD2DQ,
        [Mnemonic.Cvtps2pd] = SseKind.CvtPS2PD, [Mnemonic.Cvtpd2ps] = SseKind.CvtPD2PS, [Mnemonic.Cvtss2sd] = SseKind.CvtSS2SD, [Mnemonic.Cvtsd2ss] = SseKind.CvtSD2SS,
        [Mnemonic.Movhlps] = SseKind.MovHLPS, [Mnemonic.Movlhps] = SseKind.MovLHPS,
    };

    private static bool HasMmxOrVex(ref Instruction ins)
    {
        if (ins.Encoding != EncodingKind.Legacy) return true;
        for (int i = 0; i < ins.OpCount; i++)
            if (ins.GetOpKind(i) == OpKind.Register && ins.GetOpRegister(i).IsMM()) return true;
        return false;
    }

    private static bool TranslateMmx(ref Op op, ref Instruction ins)
    {
        bool r0 = IsReg(ref ins, 0);
        bool mem = (op.Flags & OpFlags.Mem) != 0;
        bool mm0 = r0 && ins.Op0Register.IsMM();
        if (SseBinary.TryGetValue(ins.Mnemonic, out var kind) || ins.Mnemonic == Mnemonic.Pshufw)
        {
            if (!mm0) return false;
            if (ins.Mnemonic == Mnemonic.Pshufw) kind = SseKind.ShufLW;
            else if (kind is SseKind.SllDQ or SseKind.SrlDQ || (int)kind >= (int)SseKind.AddPS || kind == SseKind.ShufD || kind == SseKind.UnpckLQDQ || kind == SseKind.UnpckHQDQ) return false;
            op.Cc = (byte)kind;
            if (ins.OpCount >= 2 && ins.GetOpKind(1) is OpKind.Immediate8) { op.Flags |= OpFlags.ImmSrc; op.Imm = ins.Immediate8; }
            else if (ins.OpCount == 3) op.Imm = ins.GetImmediate(2);
            op.H = &MmxBin;
            return true;
        }
        switch (ins.Mnemonic)
        {
            case Mnemonic.Movd:
            case Mnemonic.Movq:
                if (mm0)
                {
                    if (!mem && ins.Op1Register.IsGPR()) { op.Size = (byte)ins.Op1Register.GetSize(); op.Size2 = 1; }
                    else op.Size = ins.Mnemonic == Mnemonic.Movd ? (byte)4 : (byte)8;
                    op.H = &MmxLoad;
                    return true;
                }
                if (r0)
                {
                    byte gpr = op.Reg;
                    op.Size = (byte)ins.Op0Register.GetSize();
                    op.Reg = op.Rm;
                    op.Rm = gpr;
                    op.Size2 = 1;
                }
                else op.Size = ins.Mnemonic == Mnemonic.Movd ? (byte)4 : (byte)8;
                op.H = &MmxStore;
                return true;
            case Mnemonic.Movntq:
                op.Size = 8;
                op.H = &MmxStore;
                return true;
            case Mnemonic.Pmovmskb: op.H = &MmxMoveMask; return true;
            case Mnemonic.Pextrw: if (mem) return false; op.Imm = ins.GetImmediate(2); op.H = &MmxPextrw; return true;
            case Mnemonic.Pinsrw: op.Imm = ins.GetImmediate(2); op.H = &MmxPinsrw; return true;
            case Mnemonic.Movq2dq: op.Cc = 0; op.H = &MmxXmmMove; return true;
            case Mnemonic.Movdq2q: op.Cc = 1; op.H = &MmxXmmMove; return true;
        }
        return false;
    }

    private static bool TranslateSse(ref Op op, ref Instruction ins)
    {
        if (ins.Mnemonic == Mnemonic.Emms) { op.H = &Emms; return true; }
        if (ins.Encoding != EncodingKind.Legacy) return false; // VEX/EVEX (AVX) is not implemented: #UD
        if (HasMmxOrVex(ref ins)) return TranslateMmx(ref op, ref ins);
        bool r0 = IsReg(ref ins, 0);
        bool mem = (op.Flags & OpFlags.Mem) != 0;
        if (SseBinary.TryGetValue(ins.Mnemonic, out var kind))
        {
            if (ins.Mnemonic == Mnemonic.Cmpsd && op.Size2 != 0) return false; // string CMPSD is handled elsewhere
            if (!r0 || !ins.Op0Register.IsXMM()) return false;
            op.Cc = (byte)kind;
            op.Size2 = 1; // legacy SSE: 16-byte memory operands must be aligned
            if (ins.OpCount >= 2 && ins.GetOpKind(1) is OpKind.Immediate8) { op.Flags |= OpFlags.ImmSrc; op.Imm = ins.Immediate8; }
            else if (ins.OpCount == 3) op.Imm = ins.GetImmediate(2);
            op.H = &SseBin;
            return true;
        }
        switch (ins.Mnemonic)
        {
            case Mnemonic.Movaps: case Mnemonic.Movapd: case Mnemonic.Movdqa:
            case Mnemonic.Movups: case Mnemonic.Movupd: case Mnemonic.Movdqu:
            case Mnemonic.Movntdq: case Mnemonic.Movntps: case Mnemonic.Movntpd:
                op.Size = 16;
                op.Size2 = ins.Mnemonic is Mnemonic.Movups or Mnemonic.Movupd or Mnemonic.Movdqu ? (byte)0 : (byte)1;
                op.H = r0 ? &MovXmmLoad : &MovXmmStore;
                return true;
            case Mnemonic.Movnti:
                op.H = op.Size == 8 ? &MovMR64 : &MovMR;
                return true;
            case Mnemonic.Movd:
            case Mnemonic.Movq:
            {
                if (r0 && ins.Op0Register.IsXMM())
                {
                    op.Cc = 0;
                    if (!mem && ins.Op1Register.IsGPR()) { op.Size = (byte)ins.Op1Register.GetSize(); op.Size2 = 1; }
                    else op.Size = ins.Mnemonic == Mnemonic.Movd ? (byte)4 : (byte)8;
                    op.H = &MovXmmPartial;
                    return true;
                }
                // Store to memory or a GPR: the XMM register is the second operand.
                op.Cc = 0;
                if (r0)
                {
                    byte gpr = op.Reg;
                    op.Size = (byte)ins.Op0Register.GetSize();
                    op.Reg = op.Rm;
                    op.Rm = gpr;
                    op.Size2 = 1;
                }
                else op.Size = ins.Mnemonic == Mnemonic.Movd ? (byte)4 : (byte)8;
                op.H = &MovXmmPartialStore;
                return true;
            }
            case Mnemonic.Movss:
            case Mnemonic.Movsd:
            {
                if (op.Size2 != 0) return false;
                byte size = ins.Mnemonic == Mnemonic.Movss ? (byte)4 : (byte)8;
                op.Size = size;
                if (r0) { op.Cc = mem ? (byte)0 : (byte)1; op.H = &MovXmmPartial; }
                else { op.Cc = 0; op.H = &MovXmmPartialStore; }
                return true;
            }
            case Mnemonic.Movlps: case Mnemonic.Movlpd: case Mnemonic.Movhps: case Mnemonic.Movhpd:
            {
                bool high = ins.Mnemonic is Mnemonic.Movhps or Mnemonic.Movhpd;
                op.Size = 8;
                if (r0) { op.Cc = high ? (byte)2 : (byte)1; op.H = &MovXmmPartial; }
                else { op.Cc = high ? (byte)2 : (byte)0; op.H = &MovXmmPartialStore; }
                return true;
            }
            case Mnemonic.Pmovmskb: op.Cc = 0; op.H = &MoveMask; return true;
            case Mnemonic.Movmskps: op.Cc = 1; op.H = &MoveMask; return true;
            case Mnemonic.Movmskpd: op.Cc = 2; op.H = &MoveMask; return true;
            case Mnemonic.Pextrw:
                if (mem) return false;
                op.Imm = ins.GetImmediate(2);
                op.H = &Pextrw;
                return true;
            case Mnemonic.Pinsrw:
                op.Imm = ins.GetImmediate(2);
                op.H = &Pinsrw;
                return true;
            case Mnemonic.Comiss: case Mnemonic.Ucomiss:
            case Mnemonic.Comisd: case Mnemonic.Ucomisd:
                op.Size = ins.Mnemonic is Mnemonic.Comiss or Mnemonic.Ucomiss ? (byte)4 : (byte)8;
                op.Cc = ins.Mnemonic is Mnemonic.Comiss or Mnemonic.Comisd ? (byte)1 : (byte)0; // COMIS signals IE on QNaN too
                op.H = &Comis;
                return true;
            case Mnemonic.Cvtsi2ss:
            case Mnemonic.Cvtsi2sd:
                op.Size = mem ? (byte)ins.MemorySize.GetSize() : (byte)ins.Op1Register.GetSize();
                op.Size2 = ins.Mnemonic == Mnemonic.Cvtsi2ss ? (byte)4 : (byte)8;
                op.H = &CvtIntToFp;
                return true;
            case Mnemonic.Cvtss2si: case Mnemonic.Cvttss2si: case Mnemonic.Cvtsd2si: case Mnemonic.Cvttsd2si:
                op.Size = (byte)ins.Op0Register.GetSize();
                op.Size2 = ins.Mnemonic is Mnemonic.Cvtss2si or Mnemonic.Cvttss2si ? (byte)4 : (byte)8;
                op.Cc = ins.Mnemonic is Mnemonic.Cvttss2si or Mnemonic.Cvttsd2si ? (byte)1 : (byte)0;
                op.H = &CvtFpToInt;
                return true;
        }
        return false;
    }
}

internal sealed unsafe partial class Translator
{
    private static bool TranslateX87(ref Op op, ref Instruction ins, int index)
    {
        var m = ins.Mnemonic;
        string name = IcedNames.Of(m);
        bool x87 = (name[0] == 'F' && m is not (Mnemonic.Fxsave or Mnemonic.Fxsave64 or Mnemonic.Fxrstor or Mnemonic.Fxrstor64 or Mnemonic.Femms))
                   || m == Mnemonic.Wait;
        if (!x87) return false;
        op.H = &X87Op;
        op.Imm2 = (ushort)index;
        op.Flags |= OpFlags.UsesInstr;
        return true;
    }
}
