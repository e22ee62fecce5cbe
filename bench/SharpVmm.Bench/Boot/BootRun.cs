using System.Diagnostics;

namespace SharpVmm.Bench.Boot;

/// <summary>One guest boot as a child process: wall time, peak RSS, and whether it got to init and powered off.</summary>
internal static class BootRun
{
    /// <param name="Jit">The translator's summary (share of instructions run translated, translation time), when it ran.</param>
    public sealed record Result(double Seconds, long PeakRssKiB, bool Ok, string Why, string Jit = "");

    private const int TimeoutSeconds = 300;

    public static Result Measure(string program, string[] args)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.Environment["SHARPVMM_JIT_STATS"] = "1"; // sharpvmm prints its translator's counters at the end
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // VmHWM is gone once the process is a zombie, so it is sampled while it runs; it only grows, so the last
        // sample before exit is the peak give or take the final few milliseconds.
        long peak = 0;
        while (!p.WaitForExit(20))
        {
            peak = Math.Max(peak, ReadHwmKiB(p.Id));
            if (sw.Elapsed.TotalSeconds > TimeoutSeconds)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                return new Result(sw.Elapsed.TotalSeconds, peak, false, $"no poweroff within {TimeoutSeconds} s");
            }
        }
        p.WaitForExit();
        double seconds = sw.Elapsed.TotalSeconds;
        string output = stdout.Result;
        bool ok = p.ExitCode == 0 && output.Contains("SHARPVMM-EXIT=0", StringComparison.Ordinal)
            && output.Contains("reboot: Power down", StringComparison.Ordinal);
        string why = ok ? "" : $"exit {p.ExitCode}: {LastLine(stderr.Result + output)}";
        return new Result(seconds, peak, ok, why, JitSummary(stderr.Result));
    }

    /// <summary>"83.0% translated, 1669 ms translating, N entries, M chained" from sharpvmm's SHARPVMM_JIT_STATS line, or "".</summary>
    private static string JitSummary(string stderr)
    {
        var m = System.Text.RegularExpressions.Regex.Match(stderr, @"emu jit: \d+ instructions, ([0-9.]+)% translated; (\d+) blocks \(\d+ bytes, \d+ not translatable\) in (\d+) ms(?:; (\d+) entries, (\d+) chained)?");
        if (!m.Success) return "";
        string chain = m.Groups[4].Success ? $", {m.Groups[4].Value} entries, {m.Groups[5].Value} chained" : "";
        return $"{m.Groups[1].Value}% translated, {m.Groups[2].Value} blocks in {m.Groups[3].Value} ms{chain}";
    }

    private static long ReadHwmKiB(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }

    private static string LastLine(string s)
    {
        var lines = s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "" : lines[^1];
    }
}
