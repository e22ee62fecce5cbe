using System.Diagnostics;
using SharpVmm.Boot.Flat;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.State;

namespace SharpVmm.Bench.Snapshot;

/// <summary>
/// Snapshot save and restore times for a 256 MiB guest, with little, half or all of its RAM in use:
/// save (pause-to-file), restore with RAM mapped lazily from the file, restore reading RAM up front, and what the
/// lazy restore defers (touching every page afterwards). Median of several runs. The file stays in the page cache
/// between save and restore, as when both happen on one host; caches are not dropped (that needs root and disturbs
/// everything else on the machine).
/// <c>dotnet run -c Release --project bench/SharpVmm.Bench -- snapshot [--accel kvm|emu] [--memory MiB] [--runs N] [--dir D]</c>
/// </summary>
public sealed class SnapshotBench : IBench
{
    public string Name => "snapshot";
    public string Description => "snapshot save/restore times for a 256 MiB guest (idle, half and fully used RAM)";

    public int Run(string[] args)
    {
        string accel = Arg(args, "--accel") ?? "kvm";
        ulong mib = ulong.Parse(Arg(args, "--memory") ?? "256");
        int runs = int.Parse(Arg(args, "--runs") ?? "3");
        string dir = Arg(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "sharpvmm-snapshot-bench");
        Directory.CreateDirectory(dir);
        string bin = Path.Combine(dir, "guest.bin");
        File.WriteAllBytes(bin, [0xFA, 0xF4]); // cli; hlt: the bench fills RAM itself
        var config = new VmConfig
        {
            Accelerator = Enum.Parse<AcceleratorKind>(accel, ignoreCase: true),
            MemoryBytes = mib << 20,
            Flat = new FlatImageSpec(bin, 0x1000, EntryMode.Real),
            Serial = "none",
        };
        string snap = Path.Combine(dir, "vm.snap");
        Console.WriteLine($"snapshot bench: {mib} MiB guest on {accel}, {runs} runs each, median; file in {dir}");
        Console.WriteLine($"{"RAM in use",-12} {"save ms",9} {"file MiB",9} {"on disk",9} {"restore(map) ms",16} {"touch-all ms",13} {"restore(read) ms",17}");
        foreach (double fraction in new[] { 0.0, 0.5, 1.0 })
        {
            var save = new List<double>(); var map = new List<double>(); var touch = new List<double>(); var read = new List<double>();
            long fileBytes = 0, allocated = 0;
            for (int i = 0; i < runs; i++)
            {
                using (var vm = VmBuilder.Build(config))
                {
                    Fill(vm, fraction, seed: i);
                    var sw = Stopwatch.StartNew();
                    var r = VmSnapshot.Save(vm, snap);
                    save.Add(sw.Elapsed.TotalMilliseconds);
                    fileBytes = r.FileBytes;
                    allocated = AllocatedBytes(snap);
                }
                using (var vm = VmBuilder.Build(config))
                {
                    var sw = Stopwatch.StartNew();
                    var r = VmSnapshot.Restore(vm, snap, mapRam: true);
                    map.Add(sw.Elapsed.TotalMilliseconds);
                    if (r.Mode != RamRestoreMode.MappedLazily) Console.WriteLine($"  note: {r.Describe()}");
                    sw.Restart();
                    TouchAll(vm);
                    touch.Add(sw.Elapsed.TotalMilliseconds);
                }
                using (var vm = VmBuilder.Build(config))
                {
                    var sw = Stopwatch.StartNew();
                    VmSnapshot.Restore(vm, snap, mapRam: false);
                    read.Add(sw.Elapsed.TotalMilliseconds);
                }
            }
            Console.WriteLine($"{fraction * 100,9:F0} %  {Median(save),9:F1} {fileBytes / 1048576.0,9:F1} {allocated / 1048576.0,8:F1}M {Median(map),16:F1} {Median(touch),13:F1} {Median(read),17:F1}");
        }
        File.Delete(snap);
        return 0;
    }

    /// <summary>Writes distinct non-zero data into <paramref name="fraction"/> of the guest's RAM (beyond the first MiB).</summary>
    private static void Fill(VirtualMachine vm, double fraction, int seed)
    {
        var rng = new Random(seed);
        var page = new byte[4096];
        ulong pages = (ulong)(vm.Memory.TotalSize * fraction) / 4096;
        for (ulong p = 256; p < 256 + pages && (p + 1) * 4096 <= vm.Memory.TotalSize; p++)
        {
            rng.NextBytes(page.AsSpan(0, 64)); // not all-zero, and not the same everywhere
            page[100] = 1;
            vm.Memory.Write(p * 4096, page);
        }
    }

    private static long TouchAll(VirtualMachine vm)
    {
        long sum = 0;
        for (ulong gpa = 0; gpa < vm.Memory.TotalSize; gpa += 4096) sum += vm.Memory.GetReadOnlySpan(gpa, 1)[0];
        return sum;
    }

    /// <summary>Blocks actually allocated to the file (du), to show the zero pages left as holes.</summary>
    private static long AllocatedBytes(string path)
    {
        try
        {
            var p = Process.Start(new ProcessStartInfo("du", ["-B1", path]) { RedirectStandardOutput = true })!;
            string o = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return long.Parse(o.Split('\t')[0]);
        }
        catch (Exception) { return -1; }
    }

    private static double Median(List<double> v)
    {
        v.Sort();
        return v[v.Count / 2];
    }

    private static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
