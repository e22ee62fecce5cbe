using System.Diagnostics;
using System.Globalization;
using System.Text;
using Xunit.Abstractions;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// Runs one class: N cases from the class's base seed (or SHARPVMM_DIFF_SEED), each built on the host and
/// replayed in the emulator. Returns null on success, else a report of the first failing cases with everything
/// needed to replay them (SHARPVMM_DIFF_SEED + SHARPVMM_DIFF_CASE).
/// </summary>
internal static class DiffRun
{
    private const int MaxFailures = 10, DetailedFailures = 3, MinCases = 1000;
    /// <summary>Keeps the suite near a minute on a loaded machine; cases are seeded by index, so fewer cases never changes one.</summary>
    private static readonly TimeSpan ClassBudget = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan EmulatorTimeout = TimeSpan.FromSeconds(5);

    public static string? Execute(InstructionClass cls, DiffFixture fx, ITestOutputHelper output)
    {
        var missingOnHost = cls.Requires & ~fx.HostFeatures;
        if (missingOnHost != 0)
        {
            output.WriteLine($"{cls.Name}: skipped, the host CPU lacks {missingOnHost}");
            return null;
        }
        if (EmulatorFactory.Unavailable is string why) return $"{cls.Name}: {why}";
        var (emuFeatures, probeError) = fx.EmulatorFeatures;
        if (probeError is not null) return $"{cls.Name}: cannot read the emulator's CPUID ({probeError})";
        var notAdvertised = cls.Requires & ~emuFeatures;
        if (notAdvertised != 0)
        {
            output.WriteLine($"{cls.Name}: skipped, the emulator's CPUID does not advertise {notAdvertised}");
            return null;
        }
        foreach (var d in cls.Restrict(fx.HostFeatures & emuFeatures)) output.WriteLine($"{cls.Name}: not generated: {d}");

        ulong baseSeed = EnvU64("SHARPVMM_DIFF_SEED") ?? cls.BaseSeed;
        int? only = (int?)EnvU64("SHARPVMM_DIFF_CASE");
        int cases = (int?)EnvU64("SHARPVMM_DIFF_CASES") ?? cls.Cases;
        int first = only ?? 0, last = only ?? cases - 1;

        var report = new StringBuilder();
        int failures = 0, ran = 0, instructions = 0;
        var sw = Stopwatch.StartNew();
        for (int i = first; i <= last; i++)
        {
            if (sw.Elapsed > ClassBudget && only is null && ran >= MinCases)
            {
                output.WriteLine($"{cls.Name}: stopped after {ran} cases at the {ClassBudget.TotalSeconds:0} s class budget");
                break;
            }
            ulong seed = DiffRandom.CaseSeed(baseSeed, i);
            var c = fx.Builder.Build(cls, seed, i);
            var e = fx.Emu.Run(c.Initial, c.Code, c.CodeAddress, c.InitialData, EmulatorTimeout);
            ran++;
            instructions += c.Instructions.Count;
            var diffs = DiffCompare.Differences(c, e, cls);
            if (diffs.Count == 0) continue;
            var again = fx.Emu.Run(c.Initial, c.Code, c.CodeAddress, c.InitialData, EmulatorTimeout, fresh: true);
            if (DiffCompare.Differences(c, again, cls).Count == 0)
                diffs.Insert(0, "passes on a fresh accelerator: the reused one kept stale state (decoded blocks or TLB) from earlier cases");
            failures++;
            if (failures <= DetailedFailures) report.Append(Describe(cls, baseSeed, c, diffs));
            else if (failures <= MaxFailures) report.Append($"\n--- case {i}: {diffs[0]}  [{FirstLine(c)}]\n");
            if (failures >= MaxFailures) break;
        }
        output.WriteLine($"{cls.Name}: {ran} cases, {instructions} instructions, {failures} failing, {sw.Elapsed.TotalSeconds:0.00} s, base seed 0x{baseSeed:x}");
        if (failures == 0) return null;
        return $"{cls.Name}: {failures} of {ran} cases differ from the host CPU (stopped at {MaxFailures})\n{report}";
    }

    private static string FirstLine(DiffCase c) => c.Listing().Split('\n')[0].Trim();

    private static string Describe(InstructionClass cls, ulong baseSeed, DiffCase c, List<string> diffs)
    {
        var sb = new StringBuilder();
        sb.Append($"\n--- {cls.Name} case {c.Index} (case seed 0x{c.Seed:x})\n");
        sb.Append($"replay: SHARPVMM_DIFF_SEED=0x{baseSeed:x} SHARPVMM_DIFF_CASE={c.Index} dotnet test tests/SharpVmm.Emulator.Tests " +
                  $"--filter FullyQualifiedName~Differential.DifferentialTests.{cls.Name}\n");
        sb.Append("code:\n").Append(c.Listing());
        sb.Append("input:\n").Append(c.Initial.Describe(withXmm: true));
        sb.Append("differences:\n");
        foreach (var d in diffs) sb.Append("  ").Append(d).Append('\n');
        return sb.ToString();
    }

    private static ulong? EnvU64(string name)
    {
        string? v = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(v)) return null;
        v = v.Trim();
        bool ok = v.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(v.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong x)
            : ulong.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out x);
        if (!ok) throw new ArgumentException($"{name}={v} is not a number (decimal or 0x-prefixed hex)");
        return x;
    }
}
