using System.Text.Json.Nodes;
using SharpVmm.Memory.Host;
using SharpVmm.Monitor.Client;
using Xunit.Abstractions;

namespace SharpVmm.EndToEnd;

/// <summary>Debian's virtio_balloon driver against our device: the host's target takes memory from the guest and gives it back to the host.</summary>
public sealed class BalloonGuestTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-balloon-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [LinuxGuestFact]
    public async Task Inflating_the_balloon_shrinks_what_the_guest_can_use_and_lowers_the_VMs_resident_memory()
    {
        string qmp = Path.Combine(_dir, "qmp.sock");
        // Dirty 128 MiB of guest RAM and free it again: free in the guest, resident on the host, what a balloon reclaims.
        string cmd = "dd if=/dev/zero of=/tmp/fill bs=1M count=128 2>/dev/null; rm /tmp/fill; echo SHARPVMM-FILLED; "
            + "while true; do grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; sleep 3; done";
        using var g = new GuestVmProcess("balloon", cmd, "--memory", "256M,merge=off", "--balloon", "--qmp", "unix:" + qmp);
        g.WaitFor("SHARPVMM-FILLED", TimeSpan.FromSeconds(1500)); // ~1 min on a quiet host
        g.WaitFor("MemTotal:", TimeSpan.FromSeconds(60));
        long totalBefore = g.LastMeminfoKiB("MemTotal")!.Value;
        long rssBefore = ProcessMemory.Read(g.Pid.ToString()).ResidentBytes;

        await using var c = await QmpClient.ConnectAndNegotiateAsync("unix:" + qmp);
        Assert.Equal(256L << 20, (await c.ExecuteAsync("query-balloon"))!["actual"]!.GetValue<long>());
        await c.ExecuteAsync("balloon", new JsonObject { ["value"] = 96L << 20 });
        await WaitForActual(c, 96L << 20, TimeSpan.FromSeconds(240));
        var change = await NextEvent(c, "BALLOON_CHANGE");
        Assert.True(change["data"]!["actual"]!.GetValue<long>() < 256L << 20);

        // The guest sees its RAM shrink by the 160 MiB it handed over (no deflate-on-oom: MemTotal drops).
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (g.LastMeminfoKiB("MemTotal") > totalBefore - 150 * 1024 && DateTime.UtcNow < deadline) Thread.Sleep(500);
        long totalAfter = g.LastMeminfoKiB("MemTotal")!.Value;
        long rssAfter = ProcessMemory.Read(g.Pid.ToString()).ResidentBytes;
        var report = (JsonObject)(await c.ExecuteAsync("x-query-ksm"))!;
        output.WriteLine($"guest MemTotal {totalBefore} -> {totalAfter} kB; VMM RSS {rssBefore >> 20} -> {rssAfter >> 20} MiB; {report["balloon"]!.ToJsonString()}");
        Assert.True(totalAfter <= totalBefore - 150 * 1024, $"guest MemTotal {totalBefore} -> {totalAfter} kB");
        Assert.True(rssAfter <= rssBefore - (48L << 20), $"VMM resident memory {rssBefore >> 20} -> {rssAfter >> 20} MiB");
        Assert.Equal(160L << 20, report["balloon"]!["discarded"]!.GetValue<long>());
        Assert.Equal(0, report["balloon"]!["refused-pfns"]!.GetValue<long>());

        // The stats queue: the first report came at probe; each query hands the buffer back for a fresh one.
        deadline = DateTime.UtcNow.AddSeconds(90);
        JsonObject? stats = null;
        while (DateTime.UtcNow < deadline)
        {
            stats = (JsonObject)(await c.ExecuteAsync("x-query-ksm"))!["balloon"]!["guest-stats"]!;
            if (stats["stat-total-memory"] is { } t && Math.Abs(t.GetValue<long>() - totalAfter * 1024) < (8L << 20)) break;
            await Task.Delay(1000);
        }
        Assert.True(stats!["stat-total-memory"] is { } total && Math.Abs(total.GetValue<long>() - totalAfter * 1024) < (8L << 20),
            $"guest stats {stats.ToJsonString()} vs MemTotal {totalAfter} kB");
        Assert.True(stats.ContainsKey("stat-free-memory"), stats.ToJsonString());

        // Deflating gives it all back.
        await c.ExecuteAsync("balloon", new JsonObject { ["value"] = 256L << 20 });
        await WaitForActual(c, 256L << 20, TimeSpan.FromSeconds(120));
        deadline = DateTime.UtcNow.AddSeconds(60);
        while (g.LastMeminfoKiB("MemTotal") < totalBefore && DateTime.UtcNow < deadline) Thread.Sleep(500);
        Assert.Equal(totalBefore, g.LastMeminfoKiB("MemTotal"));
        string info = (await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info balloon" }))!.GetValue<string>();
        Assert.Equal("balloon: actual=256\r\n", info);
        await c.ExecuteAsync("quit");
        g.WaitForExit(TimeSpan.FromSeconds(60));
    }

    private static async Task WaitForActual(QmpClient c, long bytes, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        long actual;
        while ((actual = (await c.ExecuteAsync("query-balloon"))!["actual"]!.GetValue<long>()) != bytes)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"the balloon stayed at actual={actual}, target {bytes}");
            await Task.Delay(500);
        }
    }

    private static async Task<JsonObject> NextEvent(QmpClient c, string name)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var e = await c.Events.ReadAsync(cts.Token);
            if (e["event"]!.GetValue<string>() == name) return e;
        }
    }
}
