using System.Globalization;
using SharpVmm.Block;

namespace SharpVmm.Bench.Block;

/// <summary>
/// The real `sharpvmm img convert` process beside the real `qemu-img convert` process (start-up included on both
/// sides) on a qcow2 image of mixed data, zero clusters and unallocated space, to qcow2, raw and compressed qcow2, with
/// each tool's defaults (qemu-img: 8 coroutines, in-order writes, -t unsafe) and with out-of-order writes (-W).
/// Best of N runs, alternating sides; before every run the previous output is deleted, dirty pages are written back,
/// and the source is put in the same page-cache state for both (--cache warm: fully cached; cold: evicted).
/// Wall time and CPU time (user+system, from the kernel's accounting) are reported; ratio &gt;1 = SharpVmm faster.
/// </summary>
public sealed class BlockConvertBench : IBench
{
    public string Name => "img-convert";
    public string Description => "sharpvmm img convert vs qemu-img convert, real processes (--size MiB [2048], --repeat N [5], --cache warm|cold, --sharpvmm PATH, --rows NAME,NAME, --make-source PATH, --together, --settle S [0])";

    public int Run(string[] args)
    {
        if (BenchTools.QemuImg is not { } qemu) { Console.Error.WriteLine("qemu-img not installed (apt-get install qemu-utils)"); return 2; }
        var sizeMiB = long.Parse(BenchTools.Arg(args, "--size", "2048"), CultureInfo.InvariantCulture);
        var repeats = int.Parse(BenchTools.Arg(args, "--repeat", "5"), CultureInfo.InvariantCulture);
        var cold = BenchTools.Arg(args, "--cache", "warm") == "cold";
        var ours = Path.GetFullPath(BenchTools.Arg(args, "--sharpvmm", Boot.BootBench.DefaultSharpVmm()));
        if (!File.Exists(ours)) { Console.Error.WriteLine($"{ours} not found: run scripts/publish.sh or pass --sharpvmm PATH"); return 2; }
        var only = BenchTools.Arg(args, "--rows", "");
        _together = args.Contains("--together");
        _settle = double.Parse(BenchTools.Arg(args, "--settle", "0"), CultureInfo.InvariantCulture);
        if (BenchTools.Arg(args, "--inproc", "") is { Length: > 0 } existing)
        {
            // The copy alone, in this process (no start-up): for profiling knobs, not for the ratio rows.
            var fmt = BenchTools.Arg(args, "--fmt", "qcow2");
            var outPath = existing + ".inproc.out";
            for (var r = 0; r < repeats; r++)
            {
                File.Delete(outPath);
                BenchTools.Sync();
                var cpu0 = Environment.CpuUsage.TotalTime;
                var t = BenchTools.Time(() =>
                {
                    using var s = ImageFactory.Open(existing, new ImageOpenOptions { ReadOnly = true });
                    SharpVmm.Block.Operations.ImageConverter.Convert(s, outPath, new SharpVmm.Block.Operations.ConvertOptions
                    {
                        OutputFormat = fmt,
                        Workers = int.Parse(BenchTools.Arg(args, "--workers", "0"), CultureInfo.InvariantCulture),
                        ChunkBytes = int.Parse(BenchTools.Arg(args, "--chunk", "0"), CultureInfo.InvariantCulture),
                    });
                });
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"in-process convert -> {fmt}: {t:0.000}s wall, {(Environment.CpuUsage.TotalTime - cpu0).TotalSeconds:0.000}s cpu"));
            }
            File.Delete(outPath);
            return 0;
        }
        if (BenchTools.Arg(args, "--make-source", "") is { Length: > 0 } keep)
        {
            // Just the source image, for profiling one side by hand.
            MakeSource(keep, sizeMiB << 20);
            return 0;
        }
        var dir = Directory.CreateTempSubdirectory("sharpvmm-bench-").FullName;
        try
        {
            var src = Path.Combine(dir, "src.qcow2");
            MakeSource(src, sizeMiB << 20);
            Console.WriteLine($"source: {sizeMiB} MiB qcow2, {new FileInfo(src).Length >> 20} MiB allocated; page cache {(cold ? "cold (source evicted before every run)" : "warm")}; best of {repeats}; load average {LoadAverage()}");
            Console.WriteLine($"{"row",-28} {"qemu wall",10} {"ours wall",10} {"ratio",6}   {"qemu cpu",9} {"ours cpu",9} {"ratio",6}");
            Row("start-up (img info)", ["info", src], null, repeats, qemu, ours, src, cold);
            (string Name, string Fmt, string[] Extra)[] rows =
            [
                ("convert -> qcow2", "qcow2", []),
                ("convert -W -> qcow2", "qcow2", ["-W"]),
                ("convert -> raw", "raw", []),
                ("convert -W -> raw", "raw", ["-W"]),
                ("convert -c -> qcow2", "qcow2", ["-c"]),
            ];
            foreach (var (name, fmt, extra) in rows)
            {
                if (only.Length > 0 && !only.Split(',').Contains(name)) continue;
                Row(name, ["convert", "-f", "qcow2", "-O", fmt, .. extra, src], fmt, repeats, qemu, ours, src, cold);
            }
            Console.WriteLine($"load average at the end: {LoadAverage()}");
            return 0;
        }
        finally { Directory.Delete(dir, true); }
    }

    // --together: both sides run at the same moment, so a shared host's load hits them alike; wall time only (CPU
    // accounting of two concurrent children cannot be told apart), median of the per-pair ratios.
    private static bool _together;

    private static void Row(string name, string[] args, string? outFmt, int repeats, string qemu, string ours, string src, bool cold)
    {
        if (_together)
        {
            RowTogether(name, args, outFmt, repeats, qemu, ours, src, cold);
            return;
        }
        var dir = Path.GetDirectoryName(src)!;
        var q = Path.Combine(dir, "q.out");
        var o = Path.Combine(dir, "o.out");
        ChildTimer.Timing bq = new(double.MaxValue, double.MaxValue), bo = bq;
        for (var r = 0; r < repeats; r++)
        {
            // Alternate which side goes first so neither always inherits the other's aftermath.
            for (var side = 0; side < 2; side++)
            {
                var qemuSide = (side == 0) == (r % 2 == 0);
                var outPath = qemuSide ? q : o;
                File.Delete(outPath);
                Prepare(src, cold);
                string[] full = outFmt == null ? args : [.. args, outPath];
                var t = qemuSide ? ChildTimer.Run(qemu, full) : ChildTimer.Run(ours, ["img", .. full]);
                if (qemuSide) bq = Min(bq, t);
                else bo = Min(bo, t);
            }
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-28} {bq.Wall,9:0.000}s {bo.Wall,9:0.000}s {bq.Wall / bo.Wall,6:0.00}   {bq.Cpu,8:0.000}s {bo.Cpu,8:0.000}s {bq.Cpu / bo.Cpu,6:0.00}"));
        if (outFmt == null) return;
        // Both outputs must hold the same guest data, or the timing means nothing.
        ChildTimer.Run(qemu, ["compare", "-f", outFmt, "-F", outFmt, q, o]);
        File.Delete(q);
        File.Delete(o);
    }

    private static void RowTogether(string name, string[] args, string? outFmt, int repeats, string qemu, string ours, string src, bool cold)
    {
        var dir = Path.GetDirectoryName(src)!;
        var q = Path.Combine(dir, "q.out");
        var o = Path.Combine(dir, "o.out");
        var ratios = new List<double>();
        double sq = 0, so = 0;
        for (var r = 0; r < repeats; r++)
        {
            File.Delete(q);
            File.Delete(o);
            Prepare(src, cold);
            string[] fq = outFmt == null ? args : [.. args, q];
            string[] fo = outFmt == null ? ["img", .. args] : ["img", .. args, o];
            var tq = Task.Run(() => ChildTimer.Run(qemu, fq));
            var to = Task.Run(() => ChildTimer.Run(ours, fo));
            var (wq, wo) = (tq.Result.Wall, to.Result.Wall);
            ratios.Add(wq / wo);
            sq += wq;
            so += wo;
        }
        ratios.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-28} {sq / repeats,9:0.000}s {so / repeats,9:0.000}s {ratios[ratios.Count / 2],6:0.00}   (run together: mean walls, median of {repeats} pair ratios {string.Join(' ', ratios.Select(x => x.ToString("0.00", CultureInfo.InvariantCulture)))})"));
        if (outFmt == null) return;
        ChildTimer.Run(qemu, ["compare", "-f", outFmt, "-F", outFmt, q, o]);
        File.Delete(q);
        File.Delete(o);
    }

    private static ChildTimer.Timing Min(ChildTimer.Timing a, ChildTimer.Timing b) => new(Math.Min(a.Wall, b.Wall), Math.Min(a.Cpu, b.Cpu));

    private static void Prepare(string src, bool cold)
    {
        // Write back whatever the previous run left dirty, so it does not throttle this one.
        BenchTools.Sync();
        if (cold) ChildTimer.Evict(src);
        else BenchTools.DropCaches(src);
        BenchTools.Settle(_settle);
    }

    private static double _settle;

    private static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[..3] is var l ? string.Join(' ', l) : "";

    /// <summary>Per 4 MiB: 1.5 MiB of text-like (compressible) data, 1 MiB random, 0.5 MiB zero clusters, the rest unallocated.</summary>
    private static void MakeSource(string path, long size)
    {
        using var img = ImageFactory.Create(path, "qcow2", size);
        var rng = new Random(42);
        var text = new byte[1536 << 10];
        var words = "the quick brown fox jumps over a lazy dog while qemu and sharpvmm convert images "u8.ToArray();
        var rnd = new byte[1 << 20];
        for (long off = 0; off < size; off += 4 << 20)
        {
            // Vary the text per chunk so compression sees realistic, not identical, clusters.
            var salt = (int)(off >> 22);
            for (var i = 0; i < text.Length; i++) text[i] = words[(i * 7 + i / 4096 + salt) % words.Length];
            img.Write(off, text.AsSpan(0, (int)Math.Min(text.Length, size - off)));
            if (off + (2 << 20) + rnd.Length > size) continue;
            rng.NextBytes(rnd);
            img.Write(off + (2 << 20), rnd);
            img.WriteZeroes(off + (3 << 20), 512 << 10, unmap: false);
        }
        img.Flush();
    }
}
