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
    private const int MaxFailures = 12, DetailedFailures = 3, MinCases = 1000, StopAfterFailures = 300;
    /// <summary>Keeps the suite near a minute on a loaded machine; cases are seeded by index, so fewer cases never changes one.</summary>
    private static readonly TimeSpan ClassBudget = TimeSpan.FromSeconds(2.2);
    private static readonly TimeSpan EmulatorTimeout = TimeSpan.FromSeconds(5);

    public static string? Execute(InstructionClass cls, DiffFixture fx, ITestOutputHelper output)
    {
        var missingOnHost = cls.HostRequires & ~fx.HostFeatures;
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
        if (cls.SkipFor(emuFeatures) is string skip)
        {
            output.WriteLine($"{cls.Name}: skipped, {skip}");
            return null;
        }
        foreach (var d in cls.Restrict(fx.HostFeatures & emuFeatures)) output.WriteLine($"{cls.Name}: not generated: {d}");

        ulong baseSeed = EnvU64("SHARPVMM_DIFF_SEED") ?? cls.BaseSeed;
        int? only = (int?)EnvU64("SHARPVMM_DIFF_CASE");
        int cases = (int?)EnvU64("SHARPVMM_DIFF_CASES") ?? cls.Cases;
        int first = only ?? 0, last = only ?? cases - 1;

        fx.Builder.ResetStats();
        var report = new StringBuilder();
        var culprits = new Dictionary<string, int>();
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
            string culprit = Blame(fx, cls, c);
            culprits[culprit] = culprits.GetValueOrDefault(culprit) + 1;
            failures++;
            if (failures <= DetailedFailures) report.Append(Describe(cls, baseSeed, c, diffs, culprit));
            else if (failures <= MaxFailures) report.Append($"\n--- case {i}: first wrong instruction {culprit}: {diffs[0]}\n");
            if (failures >= StopAfterFailures) break;
        }
        if (cls is CodeSetClass set && only is null)
        {
            var missed = set.Codes.Where(x => !fx.Builder.Accepted.Contains(x)).ToList();
            output.WriteLine($"{cls.Name}: {set.Codes.Count - missed.Count} of {set.Codes.Count} encodings exercised" +
                (missed.Count > 0 ? $"; never: {string.Join(", ", missed.Take(30))}" : ""));
        }
        output.WriteLine($"{cls.Name}: {fx.Builder.Candidates} candidates, refused: " +
            string.Join(", ", fx.Builder.Refusals.Select(kv => $"{kv.Key} {kv.Value}")));
        output.WriteLine($"{cls.Name}: {ran} cases, {instructions} instructions, {failures} failing, {sw.Elapsed.TotalSeconds:0.00} s, base seed 0x{baseSeed:x}");
        if (failures == 0) return null;
        var summary = string.Join("\n", culprits.OrderByDescending(kv => kv.Value).Take(60).Select(kv => $"  {kv.Value,5} x {kv.Key}"));
        return $"{cls.Name}: {failures} of {ran} cases differ from the host CPU" + (failures >= StopAfterFailures ? " (stopped there)\n" : "\n") +
               $"first wrong instruction of each failing case (by encoding):\n{summary}\n" +
               $"the first {DetailedFailures} failing cases in full, then one line each up to {MaxFailures}:\n{report}";
    }

    /// <summary>Re-runs growing prefixes of a failing case to find the first instruction whose result is wrong.</summary>
    private static string Blame(DiffFixture fx, InstructionClass cls, DiffCase c)
    {
        for (int k = 1; k <= c.Steps.Count; k++)
        {
            var p = c.Prefix(k);
            var e = fx.Emu.Run(p.Initial, p.Code, p.CodeAddress, p.InitialData, EmulatorTimeout);
            if (DiffCompare.Differences(p, e, cls).Count > 0)
            {
                int first = k == 1 ? 0 : c.Steps[k - 2].Instructions;
                var ins = c.Instructions[first];
                return $"{ins.Code} ({ins.Mnemonic.ToString().ToLowerInvariant()})";
            }
        }
        if (c.FaultVector is not null)
        {
            var f = c.Instructions[^1];
            return $"{f.Code} ({f.Mnemonic.ToString().ToLowerInvariant()}, the faulting instruction)";
        }
        return "(no prefix fails alone: the combination of instructions)";
    }

    private static string Describe(InstructionClass cls, ulong baseSeed, DiffCase c, List<string> diffs, string culprit)
    {
        var sb = new StringBuilder();
        sb.Append($"\n--- {cls.Name} case {c.Index} (case seed 0x{c.Seed:x}); first wrong instruction: {culprit}\n");
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
