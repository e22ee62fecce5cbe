using System.Buffers.Binary;

namespace SharpVmm.Block.Tests;

/// <summary>
/// Bounded, seeded mutation fuzzing of the header and the metadata tables. Every outcome other than success or a
/// <see cref="BlockImageException"/> is a bug; the failure message carries the seed to replay it
/// (SHARPVMM_FUZZ_SEED=n, SHARPVMM_FUZZ_ITERATIONS=n).
/// </summary>
public class FuzzTests
{
    [Fact]
    public void Mutated_headers_and_tables_fail_cleanly()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVMM_FUZZ_SEED"), out var s) ? s : 20261124;
        var iterations = int.TryParse(Environment.GetEnvironmentVariable("SHARPVMM_FUZZ_ITERATIONS"), out var n) ? n : 150;
        using var dir = new TempDir();
        var valid = MalformedImageTests.MakeValid(dir["valid.qcow2"]);
        var l1 = MalformedImageTests.L1Offset(valid);
        var l2 = MalformedImageTests.L2Offset(valid);
        var rt = MalformedImageTests.RtOffset(valid);
        var rb = (long)(BinaryPrimitives.ReadUInt64BigEndian(valid.AsSpan((int)rt)) & 0x00ff_ffff_ffff_fe00UL);
        var snap = BinaryPrimitives.ReadInt64BigEndian(valid.AsSpan(64));
        (long Start, int Len)[] regions = [(0, 112), (112, 400), (l1, 64), (l2, 4096), (rt, 64), (rb, 256), (snap, 128)];
        ulong[] interesting = [0, 1, ulong.MaxValue, (ulong)valid.Length, 0x10000, 0x10200, 1UL << 40, 1UL << 62 | 0x10000, 1UL << 63 | 0x200, 0x7fffffff];
        var path = dir["fuzz.qcow2"];
        var outcomes = new int[2];
        for (var it = 0; it < iterations; it++)
        {
            var rng = new Random(seed + it);
            var f = (byte[])valid.Clone();
            var mutations = rng.Next(1, 5);
            var log = new System.Text.StringBuilder();
            for (var m = 0; m < mutations; m++)
            {
                var (start, len) = regions[rng.Next(regions.Length)];
                var at = (int)Math.Min(f.Length - 8, start + rng.Next(len));
                switch (rng.Next(3))
                {
                    case 0: f[at] ^= (byte)(1 << rng.Next(8)); break;
                    case 1: f[at] = (byte)rng.Next(256); break;
                    default:
                        at &= ~7;
                        BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan(at), interesting[rng.Next(interesting.Length)]);
                        break;
                }
                log.Append(at).Append(' ');
            }
            if (rng.Next(10) == 0) f = f[..rng.Next(f.Length)];
            File.WriteAllBytes(path, f);
            var iteration = it;
            try
            {
                Bounded.Run(() =>
                {
                    foreach (var ro in new[] { true, false })
                    {
                        try
                        {
                            using var img = ImageFactory.Open(path, new ImageOpenOptions { ReadOnly = ro, Format = "qcow2" });
                            MalformedImageTests.Exercise(img, ro);
                            outcomes[0]++;
                        }
                        catch (BlockImageException) { outcomes[1]++; }
                    }
                    try { ImageCheck.Run(path, Qcow2.CheckRepair.None); }
                    catch (BlockImageException) { }
                }, TimeSpan.FromSeconds(20), $"iteration {iteration}");
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException || e.Message.Contains("hang", StringComparison.Ordinal))
            {
                Assert.Fail($"fuzz seed {seed + iteration} (SHARPVMM_FUZZ_SEED={seed}, iteration {iteration}, mutated at {log}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        // The mutations must reach both outcomes, or the fuzzer is not testing anything.
        Assert.True(outcomes[0] > 0 && outcomes[1] > 0, $"outcomes: {outcomes[0]} ok, {outcomes[1]} refused");
    }
}
