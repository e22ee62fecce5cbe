using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SharpVmm.Devices.Virtio.Balloon;
using SharpVmm.Memory.Host;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;
using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// Guest memory through QMP: QEMU's balloon, query-balloon (and the BALLOON_CHANGE event) and
/// query-memory-size-summary, plus x-query-ksm, SharpVmm's account of where the VM's host memory goes (resident,
/// shared through KSM, ballooned). The human monitor's info balloon / memory_size_summary / ksm print the same.
/// </summary>
public static class MemoryCommands
{
    public const string NoBalloon = "No balloon device has been activated";

    public static void Register(QmpCommandTable table, VmMonitor vm, Action<string, JsonObject?> emit)
    {
        if (Balloon(vm) is { } device)
        {
            ulong ram = device.GuestRamBytes;
            device.ActualChanged += pages => emit("BALLOON_CHANGE", new JsonObject { ["actual"] = ActualBytes(ram, pages) });
        }

        table.Register("balloon", call =>
        {
            SetTarget(vm, call.GetInt("value")!.Value);
            return null;
        }, Req("value", QmpType.Integer));

        table.Register("query-balloon", _ => new JsonObject { ["actual"] = QueryBalloon(vm) });

        table.Register("query-memory-size-summary", _ => new JsonObject
        {
            ["base-memory"] = vm.Vm.Memory.TotalSize,
            ["plugged-memory"] = 0, // no memory hotplug
        });

        table.Register("x-query-ksm", _ => MemoryReport(vm));
    }

    /// <summary>QEMU's balloon: <paramref name="target"/> is the guest RAM size wanted, in bytes (more than RAM means none ballooned).</summary>
    public static void SetTarget(VmMonitor vm, long target)
    {
        var b = RequireBalloon(vm);
        if (target <= 0) throw QmpException.Generic("Parameter 'target' expects a size");
        ulong ram = b.GuestRamBytes;
        ulong wanted = Math.Min((ulong)target, ram);
        b.SetTargetPages((uint)Math.Min((ram - wanted) >> VirtioBalloon.PageShift, uint.MaxValue));
    }

    /// <summary>query-balloon's actual: guest RAM minus what the driver reports it has ballooned, in bytes.</summary>
    public static ulong QueryBalloon(VmMonitor vm)
    {
        var b = RequireBalloon(vm);
        return ActualBytes(b.GuestRamBytes, b.ActualPages);
    }

    private static ulong ActualBytes(ulong ram, uint pages)
    {
        ulong ballooned = (ulong)pages << VirtioBalloon.PageShift;
        return ballooned >= ram ? 0 : ram - ballooned;
    }

    private static VirtioBalloon? Balloon(VmMonitor vm)
    {
        var found = vm.Vm.Devices.OfType<VirtioBalloon>();
        return found.Count == 0 ? null : found[0].Device;
    }

    private static VirtioBalloon RequireBalloon(VmMonitor vm)
        => Balloon(vm) ?? throw new QmpException(QmpErrorClass.DeviceNotActive, NoBalloon);

    /// <summary>x-query-ksm: this VM's memory as the host sees it, the host's KSM daemon, and the balloon.</summary>
    public static JsonObject MemoryReport(VmMonitor vm)
    {
        var memory = vm.Vm.Memory;
        var self = ProcessMemory.Read();
        var report = new JsonObject
        {
            ["merge"] = memory.Options.Merge,
            ["hugepages"] = memory.Options.HugePages,
            ["prealloc"] = memory.Options.Prealloc,
            ["guest-memory"] = memory.TotalSize,
            ["guest-resident"] = memory.ResidentBytes(),
            ["resident"] = self.ResidentBytes,
            ["proportional"] = self.ProportionalBytes,
            ["ksm-merging-pages"] = self.KsmMergingPages,
            ["ksm-merged"] = self.KsmMergedBytes,
            ["ksm-zero-pages"] = self.KsmZeroPages,
            ["ksm-profit"] = self.KsmProcessProfit,
            ["vmm"] = VmmReport(vm, self),
        };
        if (Balloon(vm) is { } b)
        {
            b.RequestStats(); // fresh figures for the next query; these are the last the driver sent
            var (stats, updated) = b.LastStats;
            var guest = new JsonObject();
            foreach (var (name, value) in stats) guest[name] = value;
            report["balloon"] = new JsonObject
            {
                ["target"] = (ulong)b.TargetPages << VirtioBalloon.PageShift,
                ["actual"] = (ulong)b.ActualPages << VirtioBalloon.PageShift,
                ["discarded"] = b.InflatedPages << VirtioBalloon.PageShift,
                ["refused-pfns"] = b.RefusedPfns,
                ["guest-stats"] = guest,
                ["last-update"] = updated is { } u ? new DateTimeOffset(u).ToUnixTimeSeconds() : 0,
            };
        }
        var host = new KsmHost();
        if (host.Available)
        {
            try
            {
                var all = host.ReadAll();
                var h = new JsonObject();
                foreach (var name in new[] { "run", "pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "pages_to_scan", "sleep_millisecs", "full_scans", "general_profit" })
                    if (all.TryGetValue(name, out long v)) h[name.Replace('_', '-')] = v;
                report["host-ksm"] = h;
            }
            catch (HostMemoryException) { } // unreadable sysfs: the per-process figures still stand
        }
        return report;
    }

    /// <summary>
    /// The VMM's own share: resident memory that is not guest RAM, of it the managed heap, and (on emu) the decoded
    /// guest code, the part that grows with what the guest runs.
    /// </summary>
    private static JsonObject VmmReport(VmMonitor vm, ProcessMemory self)
    {
        long guest = (long)vm.Vm.Memory.ResidentBytes();
        var report = new JsonObject
        {
            ["overhead"] = Math.Max(0, self.ResidentBytes - guest),
            ["heap-size"] = GC.GetTotalMemory(forceFullCollection: false),
            // As the last collection left it (0 before the first one).
            ["heap-committed"] = GC.GetGCMemoryInfo().TotalCommittedBytes,
        };
        if (vm.Vm.Accelerator is SharpVmm.Emulator.EmuAccelerator emu)
        {
            report["code-cache"] = emu.CachedCodeBytes;
            report["code-cache-flushes"] = emu.CodeCacheFlushes;
        }
        return report;
    }

    /// <summary>The human monitor's <c>info balloon</c>, <c>info memory_size_summary</c> (alias memory) and <c>info ksm</c>.</summary>
    public static string HumanInfo(VmMonitor vm, string what)
    {
        var sb = new StringBuilder();
        switch (what)
        {
            case "balloon":
                sb.Append(CultureInfo.InvariantCulture, $"balloon: actual={QueryBalloon(vm) >> 20}\n");
                break;
            case "memory_size_summary" or "memory":
                sb.Append(CultureInfo.InvariantCulture, $"base memory: {vm.Vm.Memory.TotalSize}\nplugged memory: 0\n");
                break;
            case "ksm":
                var r = MemoryReport(vm);
                sb.Append(CultureInfo.InvariantCulture, $"merge: {OnOff(r["merge"])}  hugepages: {OnOff(r["hugepages"])}  prealloc: {OnOff(r["prealloc"])}\n");
                sb.Append(CultureInfo.InvariantCulture, $"guest memory: {Mib(r["guest-memory"])} MiB, backed: {Mib(r["guest-resident"])} MiB\n");
                sb.Append(CultureInfo.InvariantCulture, $"process resident: {Mib(r["resident"])} MiB, proportional: {Mib(r["proportional"])} MiB\n");
                sb.Append(CultureInfo.InvariantCulture, $"KSM merged: {r["ksm-merging-pages"]} pages ({Mib(r["ksm-merged"])} MiB), zero pages: {r["ksm-zero-pages"]}, profit: {Mib(r["ksm-profit"])} MiB\n");
                var v = (JsonObject)r["vmm"]!;
                sb.Append(CultureInfo.InvariantCulture, $"VMM overhead: {Mib(v["overhead"])} MiB (heap {Mib(v["heap-size"])} MiB, committed {Mib(v["heap-committed"])} MiB");
                sb.Append(v["code-cache"] is { } code ? string.Create(CultureInfo.InvariantCulture, $"; decoded code {Mib(code)} MiB, {v["code-cache-flushes"]} flushes)\n") : ")\n");
                if (r["balloon"] is JsonObject bl)
                    sb.Append(CultureInfo.InvariantCulture, $"balloon: {Mib(bl["actual"])} MiB (target {Mib(bl["target"])} MiB, discarded {Mib(bl["discarded"])} MiB)\n");
                if (r["host-ksm"] is JsonObject h)
                    sb.Append(CultureInfo.InvariantCulture, $"host KSM: run={h["run"]} pages_shared={h["pages-shared"]} pages_sharing={h["pages-sharing"]} pages_to_scan={h["pages-to-scan"]} sleep_millisecs={h["sleep-millisecs"]}\n");
                else
                    sb.Append("host KSM: not available\n");
                break;
            default:
                throw new ArgumentException($"no memory info '{what}'", nameof(what));
        }
        return sb.ToString();
    }

    private static string OnOff(JsonNode? flag) => flag!.GetValue<bool>() ? "on" : "off";

    private static string Mib(JsonNode? bytes)
        => (double.Parse(bytes!.ToJsonString(), CultureInfo.InvariantCulture) / (1024.0 * 1024.0)).ToString("0.0", CultureInfo.InvariantCulture);
}
