using System.Globalization;
using System.Text;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Bench.Boot;

/// <summary>
/// The Debian guest booted to poweroff (init command <c>true</c>) by SharpVmm on emu and by QEMU TCG (microvm),
/// alternating so both sides see the same host load; median wall time, median peak RSS and their ratios.
/// </summary>
public sealed class BootBench : IBench
{
    public string Name => "boot";
    public string Description => "Linux boot to poweroff: sharpvmm emu jit=off and jit=on vs qemu tcg microvm [--runs N] [--sharpvmm PATH] [--qemu PATH] [--kernel K] [--initrd I] [--tsc-khz K]";

    public int Run(string[] args)
    {
        string guest = GuestInitramfs.DefaultGuestDir;
        int runs = int.Parse(Arg(args, "--runs", "5"), CultureInfo.InvariantCulture);
        string kernel = Arg(args, "--kernel", Path.Combine(guest, "vmlinuz"));
        string initrd = Arg(args, "--initrd", Path.Combine(guest, "initrd.gz"));
        string sharpvmm = Arg(args, "--sharpvmm", DefaultSharpVmm());
        string qemu = Arg(args, "--qemu", "/usr/bin/qemu-system-x86_64");
        foreach (var (what, path) in new[] { ("kernel", kernel), ("initrd", initrd), ("sharpvmm (build src/SharpVmm.Cli -c Release)", sharpvmm), ("qemu-system-x86_64", qemu) })
        {
            if (!File.Exists(path))
            {
                Console.Error.WriteLine($"boot: no {what} at {path}");
                return 2;
            }
        }
        long tscKhz = long.Parse(Arg(args, "--tsc-khz", HostTscKhz().ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        string cmd = "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes("true"));

        string[] Ours(string jit) => ["run", "--accel", $"emu,jit={jit}", "--cpus", "1", "--memory", "256M", "--kernel", kernel, "--initrd", initrd,
            "--append", $"console=ttyS0 {cmd}"];
        string[] theirs = ["-M", "microvm,acpi=on", "-accel", "tcg", "-m", "256M", "-nographic", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd,
            "-append", $"console=ttyS0 panic=-1 tsc_early_khz={tscKhz} tsc=reliable {cmd}"];

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"boot: {runs} runs each, alternating; host load average {LoadAverage()}; {Environment.ProcessorCount} host CPUs; qemu tsc_early_khz={tscKhz}"));
        var sharp = new List<BootRun.Result>();
        var sharpJit = new List<BootRun.Result>();
        var q = new List<BootRun.Result>();
        for (int i = 0; i < runs; i++)
        {
            var a = BootRun.Measure(sharpvmm, Ours("off"));
            Console.WriteLine(Line("emu jit=off", i, a));
            sharp.Add(a);
            var j = BootRun.Measure(sharpvmm, Ours("on"));
            Console.WriteLine(Line("emu jit=on", i, j));
            sharpJit.Add(j);
            var b = BootRun.Measure(qemu, theirs);
            Console.WriteLine(Line("qemu tcg", i, b));
            q.Add(b);
        }
        int failures = sharp.Count(r => !r.Ok) + sharpJit.Count(r => !r.Ok) + q.Count(r => !r.Ok);
        double ts = Median(sharp.Select(r => r.Seconds)), tj = Median(sharpJit.Select(r => r.Seconds)), tq = Median(q.Select(r => r.Seconds));
        double ms = Median(sharp.Select(r => r.PeakRssKiB / 1024.0)), mj = Median(sharpJit.Select(r => r.PeakRssKiB / 1024.0)), mq = Median(q.Select(r => r.PeakRssKiB / 1024.0));
        Console.WriteLine();
        Console.WriteLine($"{"median",-16} {"jit=off",10} {"jit=on",10} {"qemu",10}   off/qemu  on/qemu");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"wall time (s)",-16} {ts,10:0.00} {tj,10:0.00} {tq,10:0.00}   {ts / tq,6:0.00}  {tj / tq,6:0.00}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"peak RSS (MiB)",-16} {ms,10:0.0} {mj,10:0.0} {mq,10:0.0}   {ms / mq,6:0.00}  {mj / mq,6:0.00}"));
        Console.WriteLine($"host load average after: {LoadAverage()}; failed boots: {failures}");
        return failures == 0 ? 0 : 1;
    }

    private static string Line(string who, int i, BootRun.Result r) => string.Create(CultureInfo.InvariantCulture,
        $"  run {i + 1} {who,-13} {r.Seconds,7:0.00} s  {r.PeakRssKiB / 1024.0,7:0.0} MiB  {(r.Ok ? "ok" : "FAILED: " + r.Why)}{(r.Jit.Length > 0 ? "  (" + r.Jit + ")" : "")}");

    internal static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    internal static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3]); }
        catch (IOException) { return "unknown"; }
    }

    /// <summary>
    /// The CLI users run: the native binary scripts/publish.sh puts in artifacts/bin, else the JIT build; found from the
    /// bench's own output folder up to the repository root.
    /// </summary>
    internal static string DefaultSharpVmm()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            foreach (var candidate in new[] { Path.Combine(d.FullName, "artifacts", "bin", "sharpvmm"), Path.Combine(d.FullName, "src", "SharpVmm.Cli", "bin", "Release", "net10.0", "sharpvmm") })
            {
                if (!File.Exists(candidate)) continue;
                Console.Error.WriteLine($"sharpvmm: {candidate}");
                return candidate;
            }
        }
        return "sharpvmm";
    }

    /// <summary>
    /// QEMU TCG's RDTSC counts at the host's TSC rate, so that is what its guest is told (as SharpVmm tells its own).
    /// Linux logs the rate it calibrated at boot; /proc/cpuinfo's MHz is the fallback.
    /// </summary>
    internal static long HostTscKhz()
    {
        string? mhz = KernelLogTscMhz();
        if (mhz is null)
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("cpu MHz", StringComparison.Ordinal)) { mhz = line[(line.IndexOf(':') + 1)..].Trim(); break; }
        }
        if (mhz is null || !double.TryParse(mhz, CultureInfo.InvariantCulture, out double value))
            throw new InvalidOperationException("cannot tell the host TSC rate: pass --tsc-khz");
        return (long)(value * 1000);
    }

    private static string? KernelLogTscMhz()
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("dmesg") { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = System.Diagnostics.Process.Start(psi)!;
            string log = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            string? found = null;
            foreach (var line in log.Split('\n'))
            {
                // "tsc: Refined TSC clocksource calibration: 2445.407 MHz" wins over "tsc: Detected 2445.432 MHz processor".
                int at = line.IndexOf("tsc: Refined TSC clocksource calibration: ", StringComparison.Ordinal);
                if (at >= 0) return line[(at + 42)..].Split(' ')[0];
                at = line.IndexOf("tsc: Detected ", StringComparison.Ordinal);
                if (at >= 0) found = line[(at + 14)..].Split(' ')[0];
            }
            return found;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    private static string Arg(string[] args, string name, string def)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : def;
    }
}
