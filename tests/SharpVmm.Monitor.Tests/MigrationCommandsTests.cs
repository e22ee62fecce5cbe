using System.Diagnostics;
using System.Text.Json.Nodes;
using SharpVmm.Boot.Flat;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.Migration;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Tests;

/// <summary>QEMU's migration commands end to end over QMP, between two counting emu VMs in this process.</summary>
public sealed class MigrationCommandsTests : IAsyncDisposable
{
    private const ulong Entry = 0x100000, Counter = 0x8000;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-qmp-mig-").FullName;
    private readonly List<IAsyncDisposable> _owned = [];

    public async ValueTask DisposeAsync()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) await _owned[i].DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private VirtualMachine Build(bool incoming, string? disk = null)
    {
        string bin = Path.Combine(_dir, "guest.bin");
        File.WriteAllBytes(bin, GuestCode.Assemble(64, GuestCode.CountingLoop(Counter), Entry));
        if (disk is not null)
        {
            // Disks are virtio devices, which need a Linux guest (ACPI) to be attached at all.
            return VmBuilder.Build(new VmConfig
            {
                Accelerator = AcceleratorKind.Emu,
                MemoryBytes = 128UL << 20,
                Kernel = GuestFiles.Kernel,
                Serial = "none",
                IncomingMigration = incoming,
                Disks = [new DiskSpec(disk, "raw")],
            });
        }
        return VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 16UL << 20,
            Flat = new FlatImageSpec(bin, Entry, EntryMode.Long),
            Serial = "none",
            IncomingMigration = incoming,
        });
    }

    private async Task<(VirtualMachine Vm, QmpClient Client)> Serve(string name, bool incoming, MigrationManager? manager = null, VirtualMachine? vm = null)
    {
        vm ??= Build(incoming);
        var server = QmpServer.Start(vm, Path.Combine(_dir, name), new QmpServerOptions { Migration = manager });
        var client = await QmpClient.ConnectAndNegotiateAsync(Path.Combine(_dir, name));
        _owned.Add(new Owner(vm, server));
        _owned.Add(client);
        return (vm, client);
    }

    private sealed class Owner(VirtualMachine vm, QmpServer server) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            vm.Stop();
            await server.DisposeAsync();
            vm.Dispose();
        }
    }

    private static async Task<string> Status(QmpClient c) => (await c.ExecuteAsync("query-status"))!["status"]!.GetValue<string>();

    private static List<string> MigrationEvents(QmpClient c)
    {
        var list = new List<string>();
        while (c.Events.TryRead(out var e))
            if (e["event"]!.GetValue<string>() == "MIGRATION") list.Add(e["data"]!["status"]!.GetValue<string>());
        return list;
    }

    [Fact]
    public async Task Migrate_over_qmp_with_parameters_progress_events_run_states_and_errors()
    {
        var (src, a) = await Serve("a.sock", incoming: false);
        var dstVm = Build(incoming: true);
        var incoming = new MigrationManager(dstVm);
        incoming.ExpectIncoming();
        var (dst, b) = await Serve("b.sock", incoming: true, incoming, dstVm);
        src.Start();

        Assert.Equal("inmigrate", await Status(b));
        Assert.Empty((await a.ExecuteAsync("query-migrate"))!.AsObject());
        var p = (await a.ExecuteAsync("query-migrate-parameters"))!.AsObject();
        Assert.Equal(300, p["downtime-limit"]!.GetValue<long>());
        Assert.Equal(128L << 20, p["max-bandwidth"]!.GetValue<long>());
        await a.ExecuteAsync("migrate-set-parameters", new JsonObject { ["downtime-limit"] = 50, ["max-bandwidth"] = 0 });
        p = (await a.ExecuteAsync("query-migrate-parameters"))!.AsObject();
        Assert.Equal(50, p["downtime-limit"]!.GetValue<long>());
        Assert.Equal(0, p["max-bandwidth"]!.GetValue<long>());

        // Errors, in QEMU's words where QEMU has them.
        async Task<string> Error(QmpClient c, string cmd, JsonObject? args) => (await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync(cmd, args))).Description;
        Assert.Equal("Parameter 'uri' is missing", await Error(a, "migrate", new JsonObject()));
        Assert.Contains("block migration", await Error(a, "migrate", new JsonObject { ["uri"] = "tcp:127.0.0.1:1", ["blk"] = true }));
        Assert.Contains("tcp:HOST:PORT", await Error(a, "migrate", new JsonObject { ["uri"] = "exec:cat" }));
        Assert.Contains("out of range", await Error(a, "migrate-set-parameters", new JsonObject { ["max-bandwidth"] = -5 }));
        Assert.Contains("--incoming defer", await Error(a, "migrate-incoming", new JsonObject { ["uri"] = "tcp:127.0.0.1:0" }));
        Assert.Contains("waiting for an incoming migration", await Error(b, "migrate", new JsonObject { ["uri"] = "tcp:127.0.0.1:1" }));

        // migrate-incoming names the address once (the CLI's --incoming defer waits for it); then the VM listens.
        await b.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = "tcp:127.0.0.1:0" });
        Assert.Contains("only be given once", await Error(b, "migrate-incoming", new JsonObject { ["uri"] = "tcp:127.0.0.1:0" }));
        Assert.Equal("tcp:127.0.0.1:0", await incoming.IncomingUriRequested);
        using var target = incoming.ListenIncoming(await incoming.IncomingUriRequested);
        var receive = Task.Run(() => incoming.ReceiveIncoming(target));

        ulong before = src.Memory.Read<ulong>(Counter);
        await a.ExecuteAsync("migrate", new JsonObject { ["uri"] = $"tcp:127.0.0.1:{target.LocalEndPoint!.Port}" });
        JsonObject info;
        var sw = Stopwatch.StartNew();
        while (true)
        {
            info = (await a.ExecuteAsync("query-migrate"))!.AsObject();
            string s = info["status"]!.GetValue<string>();
            if (s is "completed" or "failed" or "cancelled") break;
            Assert.True(sw.Elapsed.TotalSeconds < 60, info.ToJsonString());
            await Task.Delay(20);
        }
        Assert.True(info["status"]!.GetValue<string>() == "completed", info.ToJsonString());
        await receive.WaitAsync(TimeSpan.FromSeconds(30));
        var ram = info["ram"]!.AsObject();
        Assert.Equal(16L << 20, ram["total"]!.GetValue<long>());
        Assert.Equal(0, ram["remaining"]!.GetValue<long>());
        Assert.True(ram["duplicate"]!.GetValue<long>() > 3000, info.ToJsonString());
        Assert.True(ram["normal"]!.GetValue<long>() > 0, info.ToJsonString());
        Assert.Equal(ram["normal"]!.GetValue<long>() * 4096, ram["normal-bytes"]!.GetValue<long>());
        Assert.True(ram["dirty-sync-count"]!.GetValue<long>() >= 2, info.ToJsonString()); // round 1 plus the stop-and-copy
        Assert.Equal(4096, ram["page-size"]!.GetValue<long>());
        Assert.True(info["downtime"]!.GetValue<long>() >= 0);
        Assert.True(info["total-time"]!.GetValue<long>() >= info["downtime"]!.GetValue<long>());
        Assert.False(info.ContainsKey("expected-downtime")); // QEMU drops it once the migration has ended

        Assert.Equal("postmigrate", await Status(a));
        Assert.Equal(VmState.Paused, src.State);
        Assert.Equal(["setup", "active", "device", "completed"], MigrationEvents(a));
        Assert.Equal(["setup", "active", "completed"], MigrationEvents(b));

        ulong at = dst.Memory.Read<ulong>(Counter);
        Assert.True(at > before, $"the target starts from the source's count {at}, which had reached {before} before the migration");
        Assert.Equal(src.Memory.Read<ulong>(Counter), at);
        dst.Start();
        sw.Restart();
        while (dst.Memory.Read<ulong>(Counter) <= at + 1000)
        {
            Assert.True(sw.Elapsed.TotalSeconds < 30, "the target did not count on");
            await Task.Delay(10);
        }
        Assert.Equal("running", await Status(b));
        Assert.Equal("completed", (await b.ExecuteAsync("query-migrate"))!["status"]!.GetValue<string>());
        var resumed = new List<string>();
        while (b.Events.TryRead(out var e)) resumed.Add(e["event"]!.GetValue<string>());
        Assert.Contains("RESUME", resumed);

        // As in QEMU, cont on a migrated-away source runs it again (the user's call: it is now a copy).
        await a.ExecuteAsync("cont");
        Assert.Equal("running", await Status(a));
        // migrate_cancel with nothing running is not an error.
        await a.ExecuteAsync("migrate_cancel");
    }

    [LinuxGuestFact]
    public async Task Cont_on_a_migrated_away_source_is_refused_while_the_target_holds_its_disk()
    {
        string disk = Path.Combine(_dir, "d.raw");
        SharpVmm.Block.ImageFactory.Create(disk, "raw", 1 << 20).Dispose();
        var (src, a) = await Serve("a.sock", incoming: false, vm: Build(incoming: false, disk));
        var dstVm = Build(incoming: true, disk);
        var incoming = new MigrationManager(dstVm);
        incoming.ExpectIncoming();
        var (dst, b) = await Serve("b.sock", incoming: true, incoming, dstVm);
        src.Start();
        using var target = incoming.ListenIncoming("tcp:127.0.0.1:0");
        var receive = Task.Run(() => incoming.ReceiveIncoming(target));
        await a.ExecuteAsync("migrate", new JsonObject { ["uri"] = $"tcp:127.0.0.1:{target.LocalEndPoint!.Port}" });
        var sw = Stopwatch.StartNew();
        while ((await a.ExecuteAsync("query-migrate"))!["status"]!.GetValue<string>() != "completed")
        {
            Assert.True(sw.Elapsed.TotalSeconds < 60, "the migration did not complete");
            await Task.Delay(20);
        }
        await receive.WaitAsync(TimeSpan.FromSeconds(30));
        dst.Start();
        Assert.Equal("postmigrate", await Status(a));

        // QEMU's cont re-activates the disks first and fails when it cannot: the target writes this disk now.
        var e = await Assert.ThrowsAsync<QmpException>(() => a.ExecuteAsync("cont"));
        Assert.Contains("in use", e.Description, StringComparison.Ordinal);
        Assert.Equal("postmigrate", await Status(a));
        Assert.Equal(VmState.Paused, src.State);
    }
}
