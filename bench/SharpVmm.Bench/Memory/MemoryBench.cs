using System.Globalization;
using SharpVmm.Boot.Initramfs;
using SharpVmm.Memory.Host;

namespace SharpVmm.Bench.Memory;

/// <summary>
/// Host memory of idle identical Debian guests (SharpVmm emu, 256 MiB each): summed RSS and PSS with merge=on once KSM
/// has merged them, and with merge=off; and the VMM's own overhead per VM (resident memory minus the guest RAM it has
/// backed) beside QEMU TCG microvm booting the same kernel and initramfs with the same RAM. Needs root (it switches
/// KSM on with a fast scan rate and restores every KSM setting afterwards).
/// </summary>
public sealed class MemoryBench : IBench
{
    private const string Ready = "SHARPVMM-IDLE";
    private const ulong Ram = 256UL << 20;

    public string Name => "memory";
    public string Description => "host memory of N idle guests, merge on vs off; VMM overhead per VM vs qemu tcg microvm [--guests N] [--qemu-guests N] [--sharpvmm PATH] [--qemu PATH]";

    public int Run(string[] args)
    {
        string guest = GuestInitramfs.DefaultGuestDir;
        int n = int.Parse(Arg(args, "--guests", "4"), CultureInfo.InvariantCulture);
        int nq = int.Parse(Arg(args, "--qemu-guests", "2"), CultureInfo.InvariantCulture);
        string kernel = Path.Combine(guest, "vmlinuz"), initrd = Path.Combine(guest, "initrd.gz");
        string sharpvmm = Arg(args, "--sharpvmm", Boot.BootBench.DefaultSharpVmm());
        string qemu = Arg(args, "--qemu", "/usr/bin/qemu-system-x86_64");
        foreach (var (what, path) in new[] { ("kernel", kernel), ("initrd", initrd), ("sharpvmm (scripts/publish.sh, or build src/SharpVmm.Cli -c Release)", sharpvmm), ("qemu-system-x86_64", qemu) })
        {
            if (!File.Exists(path))
            {
                Console.Error.WriteLine($"memory: no {what} at {path}");
                return 2;
            }
        }
        var ksm = new KsmHost();
        if (!ksm.Available)
        {
            Console.Error.WriteLine("memory: this host has no KSM");
            return 2;
        }
        string cmd = GuestInitScript.CommandLineWord($"echo {Ready}; exec sleep 3600");
        IEnumerable<string> Ours(string merge) => ["run", "--accel", "emu", "--memory", $"256M,merge={merge}", "--kernel", kernel, "--initrd", initrd,
            "--serial", "stdio", "--append", $"console=ttyS0 quiet {cmd}"];
        IEnumerable<string> Theirs() => ["-M", "microvm,acpi=on,mem-merge=off", "-accel", "tcg", "-m", "256M", "-nographic", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd, "-append", $"console=ttyS0 quiet panic=-1 tsc_early_khz={HostTscKhz()} tsc=reliable {cmd}"];

        Console.WriteLine($"memory: {n} idle guests of 256 MiB per configuration; host load {LoadAverage()}");
        var off = Measure("merge=off", n, i => new IdleGuest($"off-{i}", sharpvmm, Ours("off")), ksmAfter: null);
        var q = Measure("qemu tcg", nq, i => new IdleGuest($"qemu-{i}", qemu, Theirs()), ksmAfter: null);
        Figures? on;
        using (var lease = KsmSettingsLease.Acquire(ksm, TimeSpan.FromMinutes(30)))
        {
            if (ksm.Run == 1) ksm.Write("run", 0); // the "before" figures are unmerged ones
            on = Measure("merge=on", n, i => new IdleGuest($"on-{i}", sharpvmm, Ours("on")), ksmAfter: lease);
        }
        if (off is null || on is null || q is null) return 1;

        Console.WriteLine();
        Console.WriteLine($"{"",-34} {"RSS sum",10} {"PSS sum",10} {"per VM PSS",11}   (MiB)");
        Row($"sharpvmm x{n} merge=off", off.Value.Rss, off.Value.Pss, n);
        Row($"sharpvmm x{n} merge=on, before KSM", on.Value.Rss, on.Value.Pss, n);
        Row($"sharpvmm x{n} merge=on, KSM merged", on.Value.RssAfter, on.Value.PssAfter, n);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"KSM: {on.Value.Merged} guest pages merged ({on.Value.Merged * 4096.0 / (1 << 20):0.0} MiB); host memory (PSS) saved {(off.Value.Pss - on.Value.PssAfter) / (double)(1 << 20):0.0} MiB vs merge=off"));
        Console.WriteLine();
        double ours = off.Value.Overhead / (double)n / (1 << 20), theirs = q.Value.Overhead / (double)nq / (1 << 20);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"VMM overhead per VM (RSS minus guest RAM backed), idle Debian guest, 256 MiB:"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  sharpvmm emu {ours,8:0.0} MiB   {Split(off.Value, n)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  qemu tcg     {theirs,8:0.0} MiB   {Split(q.Value, nq)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ratio sharpvmm/qemu {ours / theirs:0.00} (target <= 0.25)"));
        Console.WriteLine($"host load after: {LoadAverage()}");
        return 0;
    }

    private readonly record struct Figures(long Rss, long Pss, long RssAfter, long PssAfter, long Merged, long GuestResident, long Overhead, long Anonymous);

    /// <summary>Boots <paramref name="n"/> guests together, waits until all are idle, reads their memory (and again once KSM merged them).</summary>
    private static Figures? Measure(string label, int n, Func<int, IdleGuest> start, KsmSettingsLease? ksmAfter)
    {
        var guests = new List<IdleGuest>();
        try
        {
            for (int i = 0; i < n; i++) guests.Add(start(i));
            foreach (var g in guests)
            {
                if (!g.WaitFor(Ready, TimeSpan.FromMinutes(15)))
                {
                    Console.Error.WriteLine($"memory: {g.Name} did not get idle:\n{g.Tail()}");
                    return null;
                }
            }
            Thread.Sleep(5000);
            long rss = 0, pss = 0, guestResident = 0, anonymous = 0;
            foreach (var g in guests)
            {
                var m = ProcessMemory.Read(g.Pid.ToString(CultureInfo.InvariantCulture));
                long ram = ProcessMemory.ResidentOfMappingsSized(g.Pid.ToString(CultureInfo.InvariantCulture), Ram, slack: 4UL << 20);
                rss += m.ResidentBytes;
                pss += m.ProportionalBytes;
                guestResident += ram;
                anonymous += m.AnonymousBytes;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {label,-10} {g.Name,-8} RSS {m.ResidentBytes / (double)(1 << 20),7:0.0} MiB  PSS {m.ProportionalBytes / (double)(1 << 20),7:0.0} MiB  guest RAM backed {ram / (double)(1 << 20),7:0.0} MiB"));
            }
            long rssAfter = rss, pssAfter = pss, merged = 0;
            if (ksmAfter is not null)
            {
                ksmAfter.RunFast(pagesToScan: 10000, sleepMs: 20);
                long last = -1;
                var deadline = DateTime.UtcNow.AddMinutes(4);
                while (DateTime.UtcNow < deadline)
                {
                    Thread.Sleep(5000);
                    long now = guests.Sum(g => ProcessMemory.Read(g.Pid.ToString(CultureInfo.InvariantCulture)).KsmMergingPages);
                    if (now > 0 && now - last < Math.Max(64, now / 100)) break;
                    last = now;
                }
                rssAfter = pssAfter = 0;
                foreach (var g in guests)
                {
                    var m = ProcessMemory.Read(g.Pid.ToString(CultureInfo.InvariantCulture));
                    rssAfter += m.ResidentBytes;
                    pssAfter += m.ProportionalBytes;
                    merged += m.KsmMergingPages;
                }
            }
            return new Figures(rss, pss, rssAfter, pssAfter, merged, guestResident, rss - guestResident, anonymous);
        }
        finally
        {
            foreach (var g in guests) g.Dispose();
        }
    }

    /// <summary>The overhead's two halves: the VMM's own heap (anonymous memory besides guest RAM) and its mapped files (binary, libraries).</summary>
    private static string Split(Figures f, int n) => string.Create(CultureInfo.InvariantCulture,
        $"= heap {(f.Anonymous - f.GuestResident) / (double)n / (1 << 20):0.0} + files {(f.Rss - f.Anonymous) / (double)n / (1 << 20):0.0}   (guest RAM backed {f.GuestResident / (double)n / (1 << 20):0.0} MiB)");

    private static void Row(string what, long rss, long pss, int n) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{what,-34} {rss / (double)(1 << 20),10:0.0} {pss / (double)(1 << 20),10:0.0} {pss / (double)n / (1 << 20),11:0.0}"));

    /// <summary>QEMU TCG's TSC counts at the host's rate; told to the guest so it does not calibrate (which hangs under load).</summary>
    private static long HostTscKhz()
    {
        foreach (var line in File.ReadLines("/proc/cpuinfo"))
            if (line.StartsWith("cpu MHz", StringComparison.Ordinal)
                && double.TryParse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture, out double mhz))
                return (long)(mhz * 1000);
        throw new InvalidOperationException("cannot tell the host TSC rate from /proc/cpuinfo");
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3]); }
        catch (IOException) { return "unknown"; }
    }

    private static string Arg(string[] args, string name, string def)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : def;
    }
}
