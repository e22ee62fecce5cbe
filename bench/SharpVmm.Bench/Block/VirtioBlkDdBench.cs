using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SharpVmm.Bench.Boot;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Bench.Block;

/// <summary>
/// In-guest sequential throughput of a virtio-blk qcow2 disk: the Debian guest runs busybox dd with O_DIRECT (write
/// then read back, 1 MiB blocks) on /dev/vda, under SharpVmm on emu and under QEMU TCG microvm with the same kernel,
/// initramfs and a fresh image of the same size for each run; alternating, medians of the guest-measured MB/s.
/// <c>--no-iothread</c> runs SharpVmm with <c>--disk ...,iothread=off</c> (requests served on the vCPU thread).
/// </summary>
public sealed partial class VirtioBlkDdBench : IBench
{
    public string Name => "virtio-blk-dd";
    public string Description => "in-guest dd on a virtio-blk qcow2 disk: sharpvmm emu vs qemu tcg microvm [--runs N] [--mib M] [--sharpvmm PATH] [--qemu PATH] [--no-qemu] [--no-iothread] [--both-modes]";

    private sealed record DdRun(bool Ok, double WriteMBs, double ReadMBs, double WallSeconds, string Why);

    public int Run(string[] args)
    {
        string guest = GuestInitramfs.DefaultGuestDir;
        int runs = int.Parse(Arg(args, "--runs", "3"), CultureInfo.InvariantCulture);
        int mib = int.Parse(Arg(args, "--mib", "64"), CultureInfo.InvariantCulture);
        string kernel = Arg(args, "--kernel", Path.Combine(guest, "vmlinuz"));
        string initrd = Arg(args, "--initrd", Path.Combine(guest, "initrd.gz"));
        string sharpvmm = Arg(args, "--sharpvmm", BootBench.DefaultSharpVmm());
        string qemu = Arg(args, "--qemu", "/usr/bin/qemu-system-x86_64");
        bool withQemu = !args.Contains("--no-qemu");
        bool both = args.Contains("--both-modes");
        bool ioThread = !args.Contains("--no-iothread");
        foreach (var (what, path) in new[] { ("kernel", kernel), ("initrd", initrd), ("sharpvmm (build src/SharpVmm.Cli -c Release)", sharpvmm) })
        {
            if (!File.Exists(path))
            {
                Console.Error.WriteLine($"virtio-blk-dd: no {what} at {path}");
                return 2;
            }
        }
        if (withQemu && !File.Exists(qemu))
        {
            Console.Error.WriteLine($"virtio-blk-dd: no qemu-system-x86_64 at {qemu} (or pass --no-qemu)");
            return 2;
        }
        string dir = Directory.CreateTempSubdirectory("sharpvmm-dd-bench-").FullName;
        try
        {
            long tscKhz = BootBench.HostTscKhz();
            // Debian's busybox dd prints no rate, so the guest times each dd with /proc/uptime (10 ms resolution).
            string shell = "t() { read a b < /proc/uptime; echo $a; }; "
                + $"w0=$(t); dd if=/dev/zero of=/dev/vda bs=1M count={mib} oflag=direct 2>/dev/null; w1=$(t); "
                + $"dd if=/dev/vda of=/dev/null bs=1M count={mib} iflag=direct 2>/dev/null; r1=$(t); "
                + "echo DD-RESULT $w0 $w1 $r1";
            string cmd = "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(shell));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"virtio-blk-dd: {mib} MiB O_DIRECT write then read, bs=1M, qcow2; {runs} runs each; host load average {BootBench.LoadAverage()}; {Environment.ProcessorCount} host CPUs"));
            var sides = new List<(string Name, List<DdRun> Runs)>();
            if (both) { sides.Add(("sharpvmm iothread", [])); sides.Add(("sharpvmm vcpu", [])); }
            else sides.Add((ioThread ? "sharpvmm iothread" : "sharpvmm vcpu", []));
            if (withQemu) sides.Add(("qemu tcg", []));
            for (int i = 0; i < runs; i++)
            {
                foreach (var (name, results) in sides)
                {
                    string image = Path.Combine(dir, "disk.qcow2");
                    File.Delete(image);
                    Exec("qemu-img", "create", "-q", "-f", "qcow2", image, $"{mib + 16}M");
                    DdRun r = name == "qemu tcg"
                        ? Measure(qemu, new Dictionary<string, string>(),
                            ["-M", "microvm,acpi=on", "-accel", "tcg", "-m", "256M", "-nographic", "-no-reboot",
                                "-kernel", kernel, "-initrd", initrd,
                                "-drive", $"id=d0,file={image},format=qcow2,if=none", "-device", "virtio-blk-device,drive=d0",
                                "-append", $"console=ttyS0 panic=-1 tsc_early_khz={tscKhz} tsc=reliable {cmd}"], mib)
                        : Measure(sharpvmm, new Dictionary<string, string>(),
                            ["run", "--accel", "emu", "--memory", "256M", "--kernel", kernel, "--initrd", initrd,
                                "--disk", $"{image},format=qcow2,iothread={(name.EndsWith("iothread", StringComparison.Ordinal) ? "on" : "off")}",
                                "--append", $"console=ttyS0 {cmd}"], mib);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  run {i + 1} {name,-18} write {r.WriteMBs,7:0.0} MB/s  read {r.ReadMBs,7:0.0} MB/s  wall {r.WallSeconds,6:0.0} s  {(r.Ok ? "ok" : "FAILED: " + r.Why)}"));
                    results.Add(r);
                }
            }
            Console.WriteLine();
            Console.WriteLine($"{"median MB/s",-18} {"write",8} {"read",8}");
            foreach (var (name, results) in sides)
            {
                var ok = results.Where(r => r.Ok).ToList();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name,-18} {BootBench.Median(ok.Select(r => r.WriteMBs)),8:0.0} {BootBench.Median(ok.Select(r => r.ReadMBs)),8:0.0}"));
            }
            if (withQemu)
            {
                var q = sides[^1].Runs.Where(r => r.Ok).ToList();
                foreach (var (name, results) in sides.Take(sides.Count - 1))
                {
                    var ok = results.Where(r => r.Ok).ToList();
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{name + "/qemu",-18} {BootBench.Median(ok.Select(r => r.WriteMBs)) / BootBench.Median(q.Select(r => r.WriteMBs)),8:0.00} {BootBench.Median(ok.Select(r => r.ReadMBs)) / BootBench.Median(q.Select(r => r.ReadMBs)),8:0.00}"));
                }
            }
            Console.WriteLine($"host load average after: {BootBench.LoadAverage()}");
            return sides.All(s => s.Runs.All(r => r.Ok)) ? 0 : 1;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex(@"DD-RESULT ([0-9.]+) ([0-9.]+) ([0-9.]+)")]
    private static partial Regex DdLine();

    private static DdRun Measure(string program, Dictionary<string, string> env, string[] args, int mib)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in env) psi.Environment[k] = v;
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(20)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return new DdRun(false, double.NaN, double.NaN, sw.Elapsed.TotalSeconds, "no poweroff within 20 minutes");
        }
        p.WaitForExit();
        double wall = sw.Elapsed.TotalSeconds;
        var m = DdLine().Match(stdout.Result);
        bool ok = p.ExitCode == 0 && m.Success && stdout.Result.Contains("SHARPVMM-EXIT=0", StringComparison.Ordinal);
        if (!ok) return new DdRun(false, double.NaN, double.NaN, wall, $"exit {p.ExitCode}, no dd result: {Last(stderr.Result + stdout.Result)}");
        double w0 = T(m, 1), w1 = T(m, 2), r1 = T(m, 3);
        double bytes = mib * (double)(1 << 20);
        return new DdRun(true, bytes / 1e6 / Math.Max(w1 - w0, 0.01), bytes / 1e6 / Math.Max(r1 - w1, 0.01), wall, "");
    }

    private static double T(Match m, int group) => double.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);

    private static string Last(string s)
    {
        var lines = s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "" : lines[^1];
    }

    private static void Exec(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {err}");
    }

    private static string Arg(string[] args, string name, string def)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : def;
    }
}
