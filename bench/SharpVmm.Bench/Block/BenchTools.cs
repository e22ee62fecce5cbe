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
    /// On a VM with free page reporting (virtio-balloon REPORTING, as on this host), memory freed by deleting a previous
    /// output is handed back to the hypervisor a second or two later, and touching it again costs a host fault per
    /// page: a run started right after a delete reuses still-backed pages and one started later does not, a 2-5x
    /// difference in system time that followed the run order, not the tool. Waiting lets the reporting finish, so
    /// every run of either tool starts from the same state.
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
