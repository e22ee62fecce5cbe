using System.Diagnostics;
using System.Globalization;

namespace SharpVmm.Bench.Block;

internal static class BenchTools
{
    public static string? QemuImg => File.Exists("/usr/bin/qemu-img") ? "/usr/bin/qemu-img" : null;

    public static double Time(Action a)
    {
        var sw = Stopwatch.StartNew();
        a();
        return sw.Elapsed.TotalSeconds;
    }

    public static double RunTimed(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var t = sw.Elapsed.TotalSeconds;
        if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} {string.Join(' ', args)}: {e}{o.Result}");
        return t;
    }

    /// <summary>Runs qemu-img bench and returns the time it reports for the I/O itself (no process start-up).</summary>
    public static double QemuBench(params string[] args)
    {
        var psi = new ProcessStartInfo(QemuImg!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        const string marker = "Run completed in ";
        var i = o.IndexOf(marker, StringComparison.Ordinal);
        if (p.ExitCode != 0 || i < 0) throw new InvalidOperationException($"qemu-img {string.Join(' ', args)}: {o}{p.StandardError.ReadToEnd()}");
        var rest = o[(i + marker.Length)..];
        return double.Parse(rest[..rest.IndexOf(' ', StringComparison.Ordinal)], CultureInfo.InvariantCulture);
    }

    /// <summary>Writes back all dirty pages (sync(1)) so the next timed run does not pay for the previous one.</summary>
    public static void Sync() => RunTimed("/bin/sync");

    /// <summary>
    /// Optional pause before a timed run (--settle S). This VM has free page reporting (virtio-balloon REPORTING): memory
    /// freed by deleting a previous output goes back to the hypervisor a moment later, and the next writer then takes a
    /// host fault per page-cache page, 2-5x the system time of the same copy into still-backed pages. Which run gets
    /// which pages is not under either tool's control; pausing makes every run start with the reporting done, but the
    /// measured state after a pause was not repeatable either (see the report of issue #3), so the default is 0 and the
    /// option is there to study it.
    /// </summary>
    public static void Settle(double seconds)
    {
        if (seconds > 0) Thread.Sleep(TimeSpan.FromSeconds(seconds));
    }

    public static void DropCaches(params string[] files)
    {
        // Page-cache state must match between the two sides; keep everything warm (fair and repeatable on a shared host).
        foreach (var f in files)
        {
            using var fs = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20);
            var buf = new byte[1 << 20];
            while (fs.Read(buf) > 0) { }
        }
    }

    public static void Row(string name, double qemu, double ours, string unit)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-34} {qemu,12:0.0} {ours,12:0.0} {unit,-6} ratio {(unit == "s" ? qemu / ours : ours / qemu),6:0.00}"));
    }

    public static string Arg(string[] args, string name, string def)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : def;
    }
}
