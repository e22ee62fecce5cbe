namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// xoshiro256** seeded by SplitMix64: 64-bit seeds and the same stream on every .NET version, so a printed
/// seed replays the same case anywhere.
/// </summary>
internal sealed class DiffRandom
{
    private ulong _s0, _s1, _s2, _s3;

    public DiffRandom(ulong seed)
    {
        _s0 = SplitMix(ref seed); _s1 = SplitMix(ref seed); _s2 = SplitMix(ref seed); _s3 = SplitMix(ref seed);
    }

    public static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E37_79B9_7F4A_7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The seed of case <paramref name="index"/> of a run with <paramref name="baseSeed"/>.</summary>
    public static ulong CaseSeed(ulong baseSeed, int index)
    {
        ulong x = baseSeed ^ ((ulong)index * 0xD1B5_4A32_D192_ED03UL);
        return SplitMix(ref x);
    }

    public ulong NextU64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, n).</summary>
    public int Next(int n) => n <= 0 ? throw new ArgumentOutOfRangeException(nameof(n)) : (int)(NextU64() % (ulong)n);
    public int Next(int lo, int hi) => lo + Next(hi - lo);
    public bool Chance(int percent) => Next(100) < percent;
    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];
    public void Fill(Span<byte> bytes)
    {
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bytes);
        for (int i = 0; i < words.Length; i++) words[i] = NextU64();
        for (int i = words.Length * 8; i < bytes.Length; i++) bytes[i] = (byte)NextU64();
    }
}
