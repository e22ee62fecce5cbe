namespace SharpVmm.Emulator.Tests;

/// <summary>The inlined 64x64 -> 128-bit products behind MUL and IMUL r64, against .NET's 128-bit integers.</summary>
public class WideMultiplyTests
{
    private static readonly ulong[] Edges =
    [
        0, 1, 2, 3, 0xFFFF_FFFF, 0x1_0000_0000, 0x1_0000_0001, 0x7FFF_FFFF, 0x8000_0000, 0x7FFF_FFFF_FFFF_FFFF,
        0x8000_0000_0000_0000, 0x8000_0000_0000_0001, ulong.MaxValue, ulong.MaxValue - 1, 0x61C8_8646_80B5_83EB,
    ];

    [Fact]
    public void Unsigned_and_signed_high_halves_match_128_bit_arithmetic()
    {
        var rng = new Random(20261124);
        var values = new List<ulong>(Edges);
        for (int i = 0; i < 200; i++) values.Add((ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40));
        foreach (ulong a in values)
        {
            foreach (ulong b in values)
            {
                UInt128 p = (UInt128)a * b;
                ulong hi = Handlers.MulHigh(a, b, out ulong lo);
                Assert.Equal((ulong)(p >> 64), hi);
                Assert.Equal((ulong)p, lo);
                Int128 q = (Int128)(long)a * (long)b;
                long shi = Handlers.SignedMulHigh((long)a, (long)b, out long slo);
                Assert.Equal((long)(q >> 64), shi);
                Assert.Equal((long)q, slo);
            }
        }
    }
}
