using System.Diagnostics;
using System.Globalization;
using System.Text;
using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Initramfs;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.Migration;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Bench.Migration;

/// <summary>
/// Live migration over loopback between two VMs in this process: total time and downtime (guest paused until the
/// target's ack) for a 256 MiB flat guest on emu that keeps dirtying a working set, and for the idle Debian guest
/// (booted once, then migrated on from VM to VM). QEMU's default parameters (300 ms, 128 MiB/s) unless given.
/// </summary>
public sealed class MigrationBench : IBench
{
    public string Name => "migration";
    public string Description => "live migration time and downtime, 256 MiB emu guests: dirtying flat guest and idle Linux [--runs N] [--wss MiB] [--delay N] [--max-bandwidth B] [--downtime-limit MS] [--no-linux]";

    private const ulong Memory = 256UL << 20;

    public int Run(string[] args)
    {
        int runs = int.Parse(Arg(args, "--runs", "3"), CultureInfo.InvariantCulture);
        int wssMiB = int.Parse(Arg(args, "--wss", "32"), CultureInfo.InvariantCulture);
        int delay = int.Parse(Arg(args, "--delay", "2000"), CultureInfo.InvariantCulture);
        var parameters = new MigrationParameters
        {
            MaxBandwidth = long.Parse(Arg(args, "--max-bandwidth", MigrationParameters.DefaultMaxBandwidth.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture),
            DowntimeLimitMs = long.Parse(Arg(args, "--downtime-limit", "300"), CultureInfo.InvariantCulture),
        };
        string dir = Directory.CreateTempSubdirectory("sharpvmm-migbench-").FullName;
        Console.WriteLine(Inv($"migration: 256 MiB guests on emu, loopback TCP, downtime-limit {parameters.DowntimeLimitMs} ms, max-bandwidth {parameters.MaxBandwidth >> 20} MiB/s; host load {LoadAverage()}, {Environment.ProcessorCount} CPUs"));
        int failures = 0;
        try
        {
            Console.WriteLine(Inv($"dirtying flat guest: increments one word per page over a {wssMiB} MiB working set, {delay} delay-loop iterations between pages"));
            var results = new List<MigrationStats>();
            for (int i = 0; i < runs; i++)
            {
                var s = MigrateFlat(dir, wssMiB, delay, parameters);
                Console.WriteLine(Line($"  run {i + 1}", s));
                if (s.Status == MigrationStatus.Completed) results.Add(s); else failures++;
            }
            Summary("dirtying", results);

            if (!args.Contains("--no-linux"))
            {
                var linux = MigrateLinux(dir, runs, parameters);
                if (linux is null) failures++;
                else Summary("idle Linux", linux);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        Console.WriteLine($"host load after: {LoadAverage()}; failed migrations: {failures}");
        return failures == 0 ? 0 : 1;
    }

    private static MigrationStats MigrateFlat(string dir, int wssMiB, int delay, MigrationParameters parameters)
    {
        string bin = Path.Combine(dir, "dirty.bin");
        File.WriteAllBytes(bin, DirtyingGuest(wssMiB, delay));
        VmConfig Config(string serial, bool incoming) => new()
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = Memory,
            Flat = new FlatImageSpec(bin, 0x10_0000, EntryMode.Protected),
            Serial = "file:" + Path.Combine(dir, serial),
            IncomingMigration = incoming,
        };
        using var source = VmBuilder.Build(Config("a.txt", false));
        using var target = VmBuilder.Build(Config("b.txt", true));
        source.Start();
        Thread.Sleep(1000); // let it dirty its working set
        var stats = Migrate(source, target, parameters);
        if (stats.Status == MigrationStatus.Completed)
        {
            target.Start();
            Thread.Sleep(200);
            if (target.State != VmState.Running) stats = stats with { Status = MigrationStatus.Failed, Error = "the target did not run on" };
        }
        return stats;
    }

    /// <summary>Boots the Debian guest once, then migrates it on from VM to VM <paramref name="runs"/> times.</summary>
    private static List<MigrationStats>? MigrateLinux(string dir, int runs, MigrationParameters parameters)
    {
        string kernel = Path.Combine(GuestInitramfs.DefaultGuestDir, "vmlinuz"), initrd = Path.Combine(GuestInitramfs.DefaultGuestDir, "initrd.gz");
        if (!File.Exists(kernel) || !File.Exists(initrd))
        {
            Console.WriteLine($"idle Linux: skipped, no guest in {GuestInitramfs.DefaultGuestDir} (run guest/setup.sh)");
            return [];
        }
        string cmd = "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes("i=0; while true; do echo TICK $i; i=$((i+1)); sleep 1; done"));
        VmConfig Config(int n) => new()
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = Memory,
            Kernel = kernel,
            Initrd = initrd,
            Append = "console=ttyS0 quiet " + cmd,
            Serial = "file:" + Path.Combine(dir, $"linux{n}.txt"),
            IncomingMigration = n > 0,
        };
        var vms = new List<VirtualMachine>();
        try
        {
            var current = VmBuilder.Build(Config(0));
            vms.Add(current);
            var boot = Stopwatch.StartNew();
            current.Start();
            if (!WaitFor(Path.Combine(dir, "linux0.txt"), "TICK 2", 600))
            {
                Console.WriteLine("idle Linux: the guest did not reach its idle loop within 600 s");
                return null;
            }
            Console.WriteLine(Inv($"idle Linux: booted to its idle loop in {boot.Elapsed.TotalSeconds:0.0} s; migrating it on {runs} times"));
            var results = new List<MigrationStats>();
            for (int i = 1; i <= runs; i++)
            {
                var next = VmBuilder.Build(Config(i));
                vms.Add(next);
                var s = Migrate(current, next, parameters);
                if (s.Status != MigrationStatus.Completed)
                {
                    Console.WriteLine(Line($"  run {i}", s));
                    return null;
                }
                next.Start();
                // The guest ticks once a second: the next tick must come from the new VM.
                bool ticks = WaitFor(Path.Combine(dir, $"linux{i}.txt"), "TICK", 60);
                Console.WriteLine(Line($"  run {i}", s) + (ticks ? "  (ticks on)" : "  (NO TICK on the target)"));
                if (!ticks) return null;
                results.Add(s);
                current = next;
            }
            return results;
        }
        finally
        {
            foreach (var vm in vms) vm.Dispose();
        }
    }

    private static MigrationStats Migrate(VirtualMachine source, VirtualMachine target, MigrationParameters parameters)
    {
        var incoming = new MigrationManager(target);
        using var listener = incoming.ListenIncoming("tcp:127.0.0.1:0");
        var receive = Task.Run(() => incoming.ReceiveIncoming(listener));
        var outgoing = new MigrationManager(source) { Parameters = parameters };
        var job = outgoing.StartOutgoing($"tcp:127.0.0.1:{listener.LocalEndPoint!.Port}");
        job.Completion.Wait();
        try { receive.Wait(TimeSpan.FromSeconds(60)); }
        catch (AggregateException ex) { return job.Stats with { Status = MigrationStatus.Failed, Error = ex.InnerException?.Message }; }
        return job.Stats;
    }

    /// <summary>32-bit protected mode, paging off: forever increments a dword in each page of the working set at 16 MiB.</summary>
    private static byte[] DirtyingGuest(int wssMiB, int delay)
    {
        var a = new Assembler(32);
        var outer = a.CreateLabel();
        var page = a.CreateLabel();
        var wait = a.CreateLabel();
        a.Label(ref outer);
        a.mov(edi, 0x100_0000);
        a.mov(ecx, wssMiB * 256);
        a.Label(ref page);
        a.inc(__dword_ptr[edi]);
        a.add(edi, 4096);
        a.mov(edx, delay);
        a.Label(ref wait);
        a.dec(edx);
        a.jnz(wait);
        a.dec(ecx);
        a.jnz(page);
        a.jmp(outer);
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), 0x10_0000);
        return ms.ToArray();
    }

    private static bool WaitFor(string file, string text, int seconds)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            try
            {
                if (File.Exists(file) && File.ReadAllText(file).Contains(text, StringComparison.Ordinal)) return true;
            }
            catch (IOException) { }
            Thread.Sleep(100);
        }
        return false;
    }

    private static string Line(string label, MigrationStats s) => s.Status == MigrationStatus.Completed
        ? Inv($"{label}: total {s.TotalTimeMs,6} ms  downtime {s.DowntimeMs,5} ms  rounds {s.Rounds,2}  sent {s.Transferred / 1048576.0,7:0.0} MiB  pages {s.Normal,7} + zero {s.Duplicate,7}  last round {s.Mbps,7:0} Mbit/s")
        : $"{label}: {s.Status.Name()}: {s.Error}";

    private static void Summary(string what, List<MigrationStats> results)
    {
        if (results.Count == 0) return;
        double Med(Func<MigrationStats, double> f)
        {
            var v = results.Select(f).Order().ToArray();
            return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
        }
        Console.WriteLine(Inv($"{what}: median total {Med(s => s.TotalTimeMs):0} ms, median downtime {Med(s => s.DowntimeMs ?? 0):0} ms, max downtime {results.Max(s => s.DowntimeMs ?? 0)} ms over {results.Count} migrations"));
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3]); }
        catch (IOException) { return "unknown"; }
    }

    private static string Arg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
