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

    public static int SizeIndex(int size) => size switch { 1 => 0, 2 => 1, 4 => 2, _ => 3 };

    /// <summary><c>op r/m, r</c> for ADD..TEST.</summary>
    public static Code RegForm(AluOp op, int size) => RmR[(int)op, SizeIndex(size)];

    /// <summary><c>op r/m, imm</c> for ADD..TEST (64-bit: a sign-extended imm32).</summary>
    public static Code ImmForm(AluOp op, int size) => RmImm[(int)op, SizeIndex(size)];

    /// <summary><c>op r/m</c> for NOT, NEG, INC, DEC.</summary>
    public static Code UnaryForm(AluOp op, int size) => Unary[(int)op - (int)AluOp.Not, SizeIndex(size)];
}
