using System.Text.Json.Nodes;
using SharpVmm.Boot.Flat;
using SharpVmm.Devices.Virtio.Balloon;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Tests;

/// <summary>balloon, query-balloon, BALLOON_CHANGE, query-memory-size-summary, x-query-ksm and their HMP forms.</summary>
public sealed class MemoryCommandsTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-qmp-mem-").FullName;
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<VirtualMachine> _vms = [];

    private (VirtualMachine Vm, QmpServer Server, VirtioBalloon? Balloon) Start(bool balloon, bool merge = true)
    {
        string bin = Path.Combine(_dir, "hlt.bin");
        File.WriteAllBytes(bin, [0xFA, 0xF4]); // cli; hlt
        var vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 64UL << 20,
            Flat = new FlatImageSpec(bin, 0x1000, EntryMode.Real),
            Serial = "none",
            MemoryOptions = new() { Merge = merge },
        });
        _vms.Add(vm);
        VirtioBalloon? b = null;
        if (balloon)
        {
            // A balloon without a transport: the test plays the driver through its config space.
            b = new VirtioBalloon(vm.Memory);
            vm.Devices.Add(VmBuilder.BalloonId, b);
        }
        var server = QmpServer.Start(vm, Path.Combine(_dir, $"qmp{_vms.Count}.sock"));
        _owned.Add(server);
        return (vm, server, b);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var o in _owned) await o.DisposeAsync();
        foreach (var vm in _vms) vm.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Balloon_commands_without_a_balloon_answer_DeviceNotActive_as_QEMU_does()
    {
        var (_, server, _) = Start(balloon: false);
        await using var c = await QmpClient.ConnectAndNegotiateAsync(server.Address.ToString());
        foreach (var (cmd, args) in new[] { ("balloon", new JsonObject { ["value"] = 1 << 20 }), ("query-balloon", (JsonObject?)null) })
        {
            var ex = await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync(cmd, args));
            Assert.Equal("DeviceNotActive", ex.ErrorClass);
            Assert.Equal("No balloon device has been activated", ex.Description);
        }
        var hmp = await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info balloon" });
        Assert.Equal("Error: No balloon device has been activated\r\n", hmp!.GetValue<string>());
        var summary = (JsonObject)(await c.ExecuteAsync("query-memory-size-summary"))!;
        Assert.Equal(64L << 20, summary["base-memory"]!.GetValue<long>());
        Assert.Equal(0, summary["plugged-memory"]!.GetValue<long>());
        hmp = await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info memory_size_summary" });
        Assert.Equal($"base memory: {64 << 20}\r\nplugged memory: 0\r\n", hmp!.GetValue<string>());
    }

    [Fact]
    public async Task Balloon_sets_the_target_and_the_driver_report_comes_back_as_query_balloon_and_BALLOON_CHANGE()
    {
        var (_, server, b) = Start(balloon: true);
        await using var c = await QmpClient.ConnectAndNegotiateAsync(server.Address.ToString());
        Assert.Equal(64L << 20, (await c.ExecuteAsync("query-balloon"))!["actual"]!.GetValue<long>());

        await c.ExecuteAsync("balloon", new JsonObject { ["value"] = 48L << 20 });
        Assert.Equal((16u << 20) >> 12, b!.TargetPages);
        await c.ExecuteAsync("balloon", new JsonObject { ["value"] = 1L << 40 }); // more than RAM: nothing ballooned
        Assert.Equal(0u, b.TargetPages);
        var bad = await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync("balloon", new JsonObject { ["value"] = 0 }));
        Assert.Equal("GenericError", bad.ErrorClass);
        Assert.Equal("Parameter 'target' expects a size", bad.Description);
        bad = await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync("balloon", new JsonObject { ["value"] = "big" }));
        Assert.Equal("Invalid parameter type for 'value', expected: integer", bad.Description);

        // The driver reports 4096 pages (16 MiB) in its balloon.
        Span<byte> actual = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(actual, 4096);
        b.WriteConfig(4, actual);
        var ev = await NextEvent(c, "BALLOON_CHANGE");
        Assert.Equal(48L << 20, ev["data"]!["actual"]!.GetValue<long>());
        Assert.Equal(48L << 20, (await c.ExecuteAsync("query-balloon"))!["actual"]!.GetValue<long>());

        var hmp = await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info balloon" });
        Assert.Equal("balloon: actual=48\r\n", hmp!.GetValue<string>());
        hmp = await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "balloon 40" });
        Assert.Equal("", hmp!.GetValue<string>());
        Assert.Equal((24u << 20) >> 12, b.TargetPages);
        hmp = await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "balloon -3" });
        Assert.StartsWith("Error: balloon: give the target in MB", hmp!.GetValue<string>());
    }

    [Fact]
    public async Task X_query_ksm_reports_this_process_the_balloon_and_the_host_daemon()
    {
        var (vm, server, _) = Start(balloon: true, merge: false);
        vm.Memory.Write(0x100000, new byte[1 << 20].AsSpan()); // back 1 MiB of guest RAM
        await using var c = await QmpClient.ConnectAndNegotiateAsync(server.Address.ToString());
        var r = (JsonObject)(await c.ExecuteAsync("x-query-ksm"))!;
        Assert.False(r["merge"]!.GetValue<bool>());
        Assert.Equal(64L << 20, r["guest-memory"]!.GetValue<long>());
        Assert.InRange(r["guest-resident"]!.GetValue<long>(), 1L << 20, 64L << 20);
        Assert.True(r["resident"]!.GetValue<long>() > r["guest-resident"]!.GetValue<long>());
        Assert.True(r["proportional"]!.GetValue<long>() > 0);
        Assert.Equal(0, r["ksm-merging-pages"]!.GetValue<long>()); // merge=off: never merged
        Assert.Equal(0, r["balloon"]!["actual"]!.GetValue<long>());
        if (Directory.Exists("/sys/kernel/mm/ksm")) Assert.NotNull(r["host-ksm"]!["run"]);
        var vmm = r["vmm"]!;
        Assert.Equal(r["resident"]!.GetValue<long>() - r["guest-resident"]!.GetValue<long>(), vmm["overhead"]!.GetValue<long>());
        Assert.InRange(vmm["heap-size"]!.GetValue<long>(), 1, vmm["overhead"]!.GetValue<long>());
        Assert.True(vmm["heap-committed"]!.GetValue<long>() >= 0);
        Assert.Equal(0, vmm["code-cache-flushes"]!.GetValue<int>()); // emu, and the guest never ran

        string text = (await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info ksm" }))!.GetValue<string>();
        Assert.Contains("merge: off", text);
        Assert.Contains("guest memory: 64.0 MiB", text);
        Assert.Contains("KSM merged: 0 pages", text);
        Assert.Contains("balloon: 0.0 MiB", text);
        Assert.Matches(@"VMM overhead: [0-9.]+ MiB \(heap [0-9.]+ MiB, committed [0-9.]+ MiB; decoded code [0-9.]+ MiB, 0 flushes\)", text);
        Assert.Contains("info ksm", (await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "help info" }))!.GetValue<string>());
    }

    [Fact]
    public async Task X_query_jit_and_info_jit_report_the_translator()
    {
        var (_, server, _) = Start(balloon: false);
        await using var c = await QmpClient.ConnectAndNegotiateAsync(server.Address.ToString());
        string text = (await c.ExecuteAsync("x-query-jit"))!["human-readable-text"]!.GetValue<string>();
        Assert.Contains("Translation mode", text);
        Assert.Contains("Translated blocks         0", text);
        string hmp = (await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info jit" }))!.GetValue<string>();
        Assert.Contains("Instructions retired", hmp);
        Assert.Contains("info jit", (await c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "help info" }))!.GetValue<string>());
    }

    private static async Task<JsonObject> NextEvent(QmpClient c, string name)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var e = await c.Events.ReadAsync(cts.Token);
            if (e["event"]!.GetValue<string>() == name) return e;
        }
    }
}
