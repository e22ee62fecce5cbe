using Iced.Intel;

namespace SharpVmm.Emulator.Jit;

/// <summary>Host encodings of the guest's integer operations, by <see cref="AluOp"/> and operand size (1, 2, 4, 8 bytes).</summary>
internal static class HostCodes
{
    private static readonly Code[,] RmR =
    {
        { Code.Add_rm8_r8, Code.Add_rm16_r16, Code.Add_rm32_r32, Code.Add_rm64_r64 },
        { Code.Or_rm8_r8, Code.Or_rm16_r16, Code.Or_rm32_r32, Code.Or_rm64_r64 },
        { Code.Adc_rm8_r8, Code.Adc_rm16_r16, Code.Adc_rm32_r32, Code.Adc_rm64_r64 },
        { Code.Sbb_rm8_r8, Code.Sbb_rm16_r16, Code.Sbb_rm32_r32, Code.Sbb_rm64_r64 },
        { Code.And_rm8_r8, Code.And_rm16_r16, Code.And_rm32_r32, Code.And_rm64_r64 },
        { Code.Sub_rm8_r8, Code.Sub_rm16_r16, Code.Sub_rm32_r32, Code.Sub_rm64_r64 },
        { Code.Xor_rm8_r8, Code.Xor_rm16_r16, Code.Xor_rm32_r32, Code.Xor_rm64_r64 },
        { Code.Cmp_rm8_r8, Code.Cmp_rm16_r16, Code.Cmp_rm32_r32, Code.Cmp_rm64_r64 },
        { Code.Test_rm8_r8, Code.Test_rm16_r16, Code.Test_rm32_r32, Code.Test_rm64_r64 }
    };

    private static readonly Code[,] RmImm =
    {
        { Code.Add_rm8_imm8, Code.Add_rm16_imm16, Code.Add_rm32_imm32, Code.Add_rm64_imm32 },
        { Code.Or_rm8_imm8, Code.Or_rm16_imm16, Code.Or_rm32_imm32, Code.Or_rm64_imm32 },
        { Code.Adc_rm8_imm8, Code.Adc_rm16_imm16, Code.Adc_rm32_imm32, Code.Adc_rm64_imm32 },
        { Code.Sbb_rm8_imm8, Code.Sbb_rm16_imm16, Code.Sbb_rm32_imm32, Code.Sbb_rm64_imm32 },
        { Code.And_rm8_imm8, Code.And_rm16_imm16, Code.And_rm32_imm32, Code.And_rm64_imm32 },
        { Code.Sub_rm8_imm8, Code.Sub_rm16_imm16, Code.Sub_rm32_imm32, Code.Sub_rm64_imm32 },
        { Code.Xor_rm8_imm8, Code.Xor_rm16_imm16, Code.Xor_rm32_imm32, Code.Xor_rm64_imm32 },
        { Code.Cmp_rm8_imm8, Code.Cmp_rm16_imm16, Code.Cmp_rm32_imm32, Code.Cmp_rm64_imm32 },
        { Code.Test_rm8_imm8, Code.Test_rm16_imm16, Code.Test_rm32_imm32, Code.Test_rm64_imm32 }
    };

    private static readonly Code[,] Unary =
    {
        { Code.Not_rm8, Code.Not_rm16, Code.Not_rm32, Code.Not_rm64 },
        { Code.Neg_rm8, Code.Neg_rm16, Code.Neg_rm32, Code.Neg_rm64 },
        { Code.Inc_rm8, Code.Inc_rm16, Code.Inc_rm32, Code.Inc_rm64 },
        { Code.Dec_rm8, Code.Dec_rm16, Code.Dec_rm32, Code.Dec_rm64 }
    };

    private static readonly Code[] Setcc = [Code.Seto_rm8, Code.Setno_rm8, Code.Setb_rm8, Code.Setae_rm8, Code.Sete_rm8, Code.Setne_rm8, Code.Setbe_rm8, Code.Seta_rm8, Code.Sets_rm8, Code.Setns_rm8, Code.Setp_rm8, Code.Setnp_rm8, Code.Setl_rm8, Code.Setge_rm8, Code.Setle_rm8, Code.Setg_rm8];
    private static readonly Code[] Cmov16 = [Code.Cmovo_r16_rm16, Code.Cmovno_r16_rm16, Code.Cmovb_r16_rm16, Code.Cmovae_r16_rm16, Code.Cmove_r16_rm16, Code.Cmovne_r16_rm16, Code.Cmovbe_r16_rm16, Code.Cmova_r16_rm16, Code.Cmovs_r16_rm16, Code.Cmovns_r16_rm16, Code.Cmovp_r16_rm16, Code.Cmovnp_r16_rm16, Code.Cmovl_r16_rm16, Code.Cmovge_r16_rm16, Code.Cmovle_r16_rm16, Code.Cmovg_r16_rm16];
    private static readonly Code[] Cmov32 = [Code.Cmovo_r32_rm32, Code.Cmovno_r32_rm32, Code.Cmovb_r32_rm32, Code.Cmovae_r32_rm32, Code.Cmove_r32_rm32, Code.Cmovne_r32_rm32, Code.Cmovbe_r32_rm32, Code.Cmova_r32_rm32, Code.Cmovs_r32_rm32, Code.Cmovns_r32_rm32, Code.Cmovp_r32_rm32, Code.Cmovnp_r32_rm32, Code.Cmovl_r32_rm32, Code.Cmovge_r32_rm32, Code.Cmovle_r32_rm32, Code.Cmovg_r32_rm32];
    private static readonly Code[] Cmov64 = [Code.Cmovo_r64_rm64, Code.Cmovno_r64_rm64, Code.Cmovb_r64_rm64, Code.Cmovae_r64_rm64, Code.Cmove_r64_rm64, Code.Cmovne_r64_rm64, Code.Cmovbe_r64_rm64, Code.Cmova_r64_rm64, Code.Cmovs_r64_rm64, Code.Cmovns_r64_rm64, Code.Cmovp_r64_rm64, Code.Cmovnp_r64_rm64, Code.Cmovl_r64_rm64, Code.Cmovge_r64_rm64, Code.Cmovle_r64_rm64, Code.Cmovg_r64_rm64];

    /// <summary>SETcc r/m8 for condition <paramref name="cc"/> (0 = O ... 15 = G).</summary>
    public static Code SetForm(int cc) => Setcc[cc];

    /// <summary>CMOVcc r, r/m at 2, 4 or 8 bytes.</summary>
    public static Code CmovForm(int cc, int size) => size switch { 2 => Cmov16[cc], 4 => Cmov32[cc], _ => Cmov64[cc] };

    public static int SizeIndex(int size) => size switch { 1 => 0, 2 => 1, 4 => 2, _ => 3 };

    /// <summary><c>op r/m, r</c> for ADD..TEST.</summary>
    public static Code RegForm(AluOp op, int size) => RmR[(int)op, SizeIndex(size)];

    /// <summary><c>op r/m, imm</c> for ADD..TEST (64-bit: a sign-extended imm32).</summary>
    public static Code ImmForm(AluOp op, int size) => RmImm[(int)op, SizeIndex(size)];

    /// <summary><c>op r/m</c> for NOT, NEG, INC, DEC.</summary>
    public static Code UnaryForm(AluOp op, int size) => Unary[(int)op - (int)AluOp.Not, SizeIndex(size)];
}
