using System.CommandLine;
using System.Globalization;
using SharpVmm.Memory.Host;

namespace SharpVmm.Cli.Host;

/// <summary>
/// <c>sharpvmm host ksm status|enable|disable</c>: the kernel's same-page merging daemon through /sys/kernel/mm/ksm.
/// Guests started with merge=on (the default) only share pages while it runs.
/// </summary>
public static class KsmCommand
{
    public static Command Create(KsmHost? host = null)
    {
        var dir = new Option<string>("--sysfs") { Description = "KSM's sysfs directory", DefaultValueFactory = _ => KsmHost.DefaultDirectory, HelpName = "DIR", Hidden = true };
        var ksm = new Command("ksm", "Kernel Same-page Merging: show its state, start or stop it");

        var status = new Command("status", "Show whether KSM runs, how much it shares and how fast it scans") { dir };
        status.SetAction(pr => Guard(() => Status(host ?? new KsmHost(pr.GetValue(dir)!))));

        var pages = new Option<long?>("--pages-to-scan") { Description = "Pages scanned per wake-up (kernel default 100)", HelpName = "N" };
        var sleep = new Option<long?>("--sleep-millisecs") { Description = "Sleep between scans in ms (kernel default 20)", HelpName = "MS" };
        var enable = new Command("enable", "Start the KSM daemon (run=1), optionally with a scan rate") { dir, pages, sleep };
        enable.SetAction(pr => Guard(() =>
        {
            var k = host ?? new KsmHost(pr.GetValue(dir)!);
            if (pr.GetValue(pages) is { } p) Set(k, "pages_to_scan", p, 1);
            if (pr.GetValue(sleep) is { } s) Set(k, "sleep_millisecs", s, 0);
            k.Write("run", 1);
            Console.WriteLine($"KSM enabled: scanning {k.Read("pages_to_scan")} pages every {k.Read("sleep_millisecs")} ms");
            return 0;
        }));

        var unmerge = new Option<bool>("--unmerge") { Description = "Also split every merged page again (run=2): memory use grows back" };
        var disable = new Command("disable", "Stop the KSM daemon (run=0); merged pages stay merged unless --unmerge") { dir, unmerge };
        disable.SetAction(pr => Guard(() =>
        {
            var k = host ?? new KsmHost(pr.GetValue(dir)!);
            bool split = pr.GetValue(unmerge);
            k.Write("run", split ? 2 : 0);
            Console.WriteLine(split ? "KSM stopped and every merged page unmerged" : "KSM stopped; already merged pages stay shared (use --unmerge to split them)");
            return 0;
        }));

        ksm.Add(status);
        ksm.Add(enable);
        ksm.Add(disable);
        return ksm;
    }

    private static void Set(KsmHost k, string name, long value, long min)
    {
        if (value < min) throw new HostMemoryException($"--{name.Replace('_', '-')} must be at least {min}");
        k.Write(name, value);
    }

    private static int Status(KsmHost k)
    {
        var v = k.ReadAll();
        long Get(string n) => v.TryGetValue(n, out long x) ? x : 0;
        long run = Get("run");
        string state = run switch { 1 => "running", 2 => "stopped, merged pages unmerged", _ => "stopped" };
        long shared = Get("pages_shared"), sharing = Get("pages_sharing");
        Console.WriteLine($"KSM: {state} (run={run}) at {k.Directory}");
        Console.WriteLine($"  {"pages_shared",-36} {shared,12}  distinct merged pages kept ({Mib(shared)})");
        Console.WriteLine($"  {"pages_sharing",-36} {sharing,12}  mappings of them, i.e. pages saved ({Mib(sharing)})");
        foreach (var (name, value) in v)
        {
            if (name is "run" or "pages_shared" or "pages_sharing") continue;
            Console.WriteLine($"  {name,-36} {value,12}");
        }
        if (run != 1) Console.WriteLine("Guests with merge=on share pages only while KSM runs: sharpvmm host ksm enable");
        return 0;
    }

    private static string Mib(long pages) => string.Create(CultureInfo.InvariantCulture, $"{pages * 4096 / (1024.0 * 1024.0):0.0} MiB");

    private static int Guard(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (HostMemoryException e)
        {
            Console.Error.WriteLine($"sharpvmm: {e.Message}");
            return 1;
        }
    }
}
