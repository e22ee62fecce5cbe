namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>Operand values biased to where arithmetic goes wrong: zero, all ones, sign boundaries, small counts.</summary>
internal static class EdgeValues
{
    private static readonly int[] Widths = [8, 16, 32, 64];

    public static ulong Mask(int bits) => bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;

    /// <summary>An edge value of <paramref name="bits"/> bits (zero extended).</summary>
    public static ulong Of(DiffRandom r, int bits)
    {
        ulong m = Mask(bits), sign = 1UL << (bits - 1);
        return r.Next(14) switch
        {
            0 => 0,
            1 => 1,
            2 => m,
            3 => sign,
            4 => sign - 1,
            5 => sign + 1,
            6 => m - 1,
            7 => (ulong)r.Next(70),
            8 => 1UL << r.Next(bits),
            9 => (m - (ulong)r.Next(70)) & m,
            _ => r.NextU64() & m,
        };
    }

    /// <summary>A 64-bit register value: an edge value at a random width, its upper bits zero, ones or noise.</summary>
    public static ulong Register(DiffRandom r)
    {
        int bits = r.Pick(Widths);
        ulong v = Of(r, bits);
        if (bits == 64) return v;
        return r.Next(4) switch
        {
            0 or 1 => v,
            2 => v | ~Mask(bits),
            _ => v | (r.NextU64() & ~Mask(bits)),
        };
    }

    /// <summary>A shift or rotate count: around 0, 1, the operand widths and the 5/6-bit masks.</summary>
    public static byte Count(DiffRandom r)
    {
        ReadOnlySpan<byte> special = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255];
        return r.Chance(70) ? special[r.Next(special.Length)] : (byte)r.NextU64();
    }

    public static ulong Float64(DiffRandom r)
    {
        ReadOnlySpan<ulong> special =
        [
            0x0000_0000_0000_0000, 0x8000_0000_0000_0000, 0x3FF0_0000_0000_0000, 0xBFF0_0000_0000_0000,
            0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000, 0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0000,
            0x7FF4_0000_0000_0001, 0x7FF0_0000_0000_0001, 0x0000_0000_0000_0001, 0x000F_FFFF_FFFF_FFFF,
            0x0010_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF, 0x41E0_0000_0000_0000, 0xC1E0_0000_0000_0000,
            0x43E0_0000_0000_0000, 0xC3E0_0000_0000_0000, 0x3FE0_0000_0000_0000, 0x4000_0000_0000_0000,
            0x3FF8_0000_0000_0000, 0x4008_0000_0000_0000, 0xC00C_0000_0000_0000, 0x41DF_FFFF_FFC0_0000,
        ];
        return r.Next(4) switch
        {
            0 or 1 => special[r.Next(special.Length)],
            2 => BitConverter.DoubleToUInt64Bits((r.Next(2000) - 1000) / 8.0),
            _ => BitConverter.DoubleToUInt64Bits(Math.ScaleB(r.NextU64() / (double)ulong.MaxValue - 0.5, r.Next(-1100, 1100))),
        };
    }

    public static uint Float32(DiffRandom r)
    {
        ReadOnlySpan<uint> special =
        [
            0x0000_0000, 0x8000_0000, 0x3F80_0000, 0xBF80_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000,
            0x7FA0_0001, 0x7F80_0001, 0x0000_0001, 0x007F_FFFF, 0x0080_0000, 0x7F7F_FFFF, 0x4F00_0000, 0xCF00_0000,
            0x5F00_0000, 0xDF00_0000, 0x3F00_0000, 0x4000_0000, 0x3FC0_0000, 0x4040_0000, 0xC060_0000, 0x4EFF_FFFF,
        ];
        return r.Next(4) switch
        {
            0 or 1 => special[r.Next(special.Length)],
            2 => BitConverter.SingleToUInt32Bits((r.Next(2000) - 1000) / 8.0f),
            _ => BitConverter.SingleToUInt32Bits(MathF.ScaleB(r.NextU64() / (float)ulong.MaxValue - 0.5f, r.Next(-160, 160))),
        };
    }

    /// <summary>A 128-bit XMM value as integer lanes of one random width.</summary>
    public static void IntVector(DiffRandom r, Span<byte> dst)
    {
        int bits = r.Pick(Widths);
        int n = 128 / bits;
        for (int i = 0; i < n; i++)
        {
            ulong v = Of(r, bits);
            for (int b = 0; b < bits / 8; b++) dst[i * bits / 8 + b] = (byte)(v >> (8 * b));
        }
    }

    /// <summary>A 128-bit XMM value as float or double lanes.</summary>
    public static void FloatVector(DiffRandom r, Span<byte> dst)
    {
        if (r.Chance(50))
            for (int i = 0; i < 2; i++) BitConverter.TryWriteBytes(dst[(i * 8)..], Float64(r));
        else
            for (int i = 0; i < 4; i++) BitConverter.TryWriteBytes(dst[(i * 4)..], Float32(r));
    }
}
