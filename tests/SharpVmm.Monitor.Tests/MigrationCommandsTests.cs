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
        using var target = await incoming.IncomingTarget;
        Assert.NotEqual(0, target.LocalEndPoint!.Port); // bound by the command itself
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

    private static async Task<JsonObject> NextEvent(QmpClient c, string name, Func<JsonObject, bool>? match = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var e = await c.Events.ReadAsync(timeout.Token);
            if (e["event"]!.GetValue<string>() == name && (match is null || match(e))) return e;
        }
    }

    private static async Task<JsonObject> WaitMigration(QmpClient c)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var info = (await c.ExecuteAsync("query-migrate"))!.AsObject();
            if (info["status"]!.GetValue<string>() is "completed" or "failed" or "cancelled") return info;
            Assert.True(sw.Elapsed.TotalSeconds < 60, info.ToJsonString());
            await Task.Delay(20);
        }
    }

    private static async Task<string> Error(QmpClient c, string cmd, JsonObject? args = null)
        => (await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync(cmd, args))).Description;

    private static JsonObject Caps(params (string Name, bool On)[] caps)
    {
        var list = new JsonArray();
        foreach (var (name, on) in caps) list.Add((JsonNode)new JsonObject { ["capability"] = name, ["state"] = on });
        return new JsonObject { ["capabilities"] = list };
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern long lseek(int fd, long offset, int whence);

    [Fact]
    public async Task Getfd_keeps_a_descriptor_sent_with_scm_rights_by_name_until_closefd_or_use()
    {
        var (_, a) = await Serve("a.sock", incoming: false);
        Assert.Equal("No file descriptor supplied via SCM_RIGHTS", await Error(a, "getfd", new JsonObject { ["fdname"] = "migrate" }));
        string file = Path.Combine(_dir, "f");
        using (var handle = File.OpenHandle(file, FileMode.Create, FileAccess.ReadWrite))
        {
            int fd = (int)handle.DangerousGetHandle();
            var e = await Assert.ThrowsAsync<QmpException>(() => a.ExecuteWithFdAsync("getfd", new JsonObject { ["fdname"] = "1x" }, fd));
            Assert.Equal("Parameter 'fdname' expects a name not starting with a digit", e.Description);
            await a.ExecuteWithFdAsync("getfd", new JsonObject { ["fdname"] = "f" }, fd);
            await a.ExecuteWithFdAsync("getfd", new JsonObject { ["fdname"] = "g" }, fd);
        }
        await a.ExecuteAsync("closefd", new JsonObject { ["fdname"] = "f" });
        Assert.Equal("File descriptor named 'f' not found", await Error(a, "closefd", new JsonObject { ["fdname"] = "f" }));
        Assert.Equal("File descriptor named 'nosuch' has not been found", await Error(a, "migrate", new JsonObject { ["uri"] = "fd:nosuch" }));
        // A descriptor that is not a stream socket is a one-way channel (a save file); a VM that has not started cannot migrate.
        Assert.Contains("cannot migrate a VM that is created", await Error(a, "migrate", new JsonObject { ["uri"] = "fd:g" }));
        Assert.Equal("File descriptor named 'g' has not been found", await Error(a, "migrate", new JsonObject { ["uri"] = "fd:g" }));
    }

    [Fact]
    public async Task Capabilities_and_parameters_libvirt_sets_are_accepted_and_others_refused_in_qemus_words()
    {
        var (_, a) = await Serve("a.sock", incoming: false);
        var caps = (await a.ExecuteAsync("query-migrate-capabilities"))!.AsArray();
        var names = new List<string>();
        foreach (var c in caps) names.Add(c!["capability"]!.GetValue<string>());
        Assert.Equal(["events", "return-path", "pause-before-switchover", "late-block-activate"], names);
        await a.ExecuteAsync("migrate-set-capabilities", Caps(("pause-before-switchover", true), ("return-path", true), ("late-block-activate", true), ("xbzrle", false), ("events", true)));
        caps = (await a.ExecuteAsync("query-migrate-capabilities"))!.AsArray();
        foreach (var c in caps) Assert.True(c!["state"]!.GetValue<bool>(), c.ToJsonString());
        Assert.Contains("'xbzrle' is not supported", await Error(a, "migrate-set-capabilities", Caps(("events", false), ("xbzrle", true))));
        // Refused as a whole: events stayed on.
        Assert.True((await a.ExecuteAsync("query-migrate-capabilities"))!.AsArray()[0]!["state"]!.GetValue<bool>());
        Assert.Equal("Parameter 'capability' does not accept value 'warp-drive'", await Error(a, "migrate-set-capabilities", Caps(("warp-drive", false))));

        await a.ExecuteAsync("migrate-set-parameters", new JsonObject { ["tls-creds"] = "", ["tls-hostname"] = "", ["max-bandwidth"] = 9223372036853727232 });
        var p = (await a.ExecuteAsync("query-migrate-parameters"))!.AsObject();
        Assert.Equal("", p["tls-creds"]!.GetValue<string>());
        Assert.Equal("", p["tls-hostname"]!.GetValue<string>());
        Assert.Equal(9223372036853727232, p["max-bandwidth"]!.GetValue<long>());
        Assert.Contains("TLS migration is not supported", await Error(a, "migrate-set-parameters", new JsonObject { ["tls-creds"] = "tls0" }));
        Assert.Equal("Parameter 'state' does not accept value 'bogus'", await Error(a, "migrate-continue", new JsonObject { ["state"] = "bogus" }));
        Assert.Equal("Migration not in expected state: none", await Error(a, "migrate-continue", new JsonObject { ["state"] = "pre-switchover" }));
    }

    [Fact]
    public async Task Save_to_a_descriptor_after_a_header_and_restore_from_one_continue_the_guest()
    {
        var (src, a) = await Serve("a.sock", incoming: false);
        src.Start();
        var sw = Stopwatch.StartNew();
        while (src.Memory.Read<ulong>(Counter) < 1000) { Assert.True(sw.Elapsed.TotalSeconds < 30); await Task.Delay(10); }

        // As libvirt's virsh save: stop, everything off, no bandwidth limit, the file (after libvirt's own header) by getfd.
        await a.ExecuteAsync("stop");
        ulong paused = src.Memory.Read<ulong>(Counter);
        await a.ExecuteAsync("migrate-set-capabilities", Caps(("events", false), ("return-path", false), ("pause-before-switchover", false), ("late-block-activate", false)));
        await a.ExecuteAsync("migrate-set-parameters", new JsonObject { ["max-bandwidth"] = 9223372036853727232 });
        string file = Path.Combine(_dir, "saved");
        byte[] header = "LibvirtQemudSave-and-some-xml"u8.ToArray();
        using (var fs = new FileStream(file, FileMode.Create, FileAccess.ReadWrite))
        {
            fs.Write(header);
            fs.Flush();
            int fd = (int)fs.SafeFileHandle.DangerousGetHandle();
            Assert.Equal(header.Length, lseek(fd, header.Length, 0)); // the descriptor's offset, where libvirt leaves it
            await a.ExecuteWithFdAsync("getfd", new JsonObject { ["fdname"] = "migrate" }, fd);
        }
        await a.ExecuteAsync("migrate", new JsonObject { ["uri"] = "fd:migrate", ["detach"] = true, ["resume"] = false });
        var info = await WaitMigration(a);
        Assert.True(info["status"]!.GetValue<string>() == "completed", info.ToJsonString());
        Assert.Equal("postmigrate", await Status(a));
        Assert.Empty(MigrationEvents(a)); // events were switched off
        Assert.Equal(header, File.ReadAllBytes(file)[..header.Length]);
        Assert.True(new FileInfo(file).Length > header.Length + 4096);

        // Restore: a VM started to receive (-incoming defer), the file positioned after the header, migrate-incoming fd:.
        var dstVm = Build(incoming: true);
        var incoming = new MigrationManager(dstVm);
        incoming.ExpectIncoming();
        var (dst, b) = await Serve("b.sock", incoming: true, incoming, dstVm);
        using (var fs = new FileStream(file, FileMode.Open, FileAccess.Read))
        {
            int fd = (int)fs.SafeFileHandle.DangerousGetHandle();
            Assert.Equal(header.Length, lseek(fd, header.Length, 0));
            await b.ExecuteWithFdAsync("getfd", new JsonObject { ["fdname"] = "restore" }, fd);
        }
        await b.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = "fd:restore" });
        using var target = await incoming.IncomingTarget;
        Assert.Null(target.LocalEndPoint);
        await Task.Run(() => incoming.ReceiveIncoming(target)).WaitAsync(TimeSpan.FromSeconds(60));
        await NextEvent(b, "MIGRATION", e => e["data"]!["status"]!.GetValue<string>() == "completed");
        Assert.Equal(paused, dst.Memory.Read<ulong>(Counter));
        await b.ExecuteAsync("cont");
        sw.Restart();
        while (dst.Memory.Read<ulong>(Counter) <= paused + 1000)
        {
            Assert.True(sw.Elapsed.TotalSeconds < 30, "the restored guest did not count on");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task Live_migration_over_a_handed_over_socket_waits_in_pre_switchover_for_migrate_continue()
    {
        var (src, a) = await Serve("a.sock", incoming: false);
        var dstVm = Build(incoming: true);
        var incoming = new MigrationManager(dstVm);
        incoming.ExpectIncoming();
        var (dst, b) = await Serve("b.sock", incoming: true, incoming, dstVm);
        src.Start();

        await b.ExecuteAsync("migrate-set-capabilities", Caps(("late-block-activate", true), ("return-path", true)));
        await b.ExecuteAsync("migrate-set-parameters", new JsonObject { ["tls-creds"] = "", ["tls-hostname"] = "" });
        await b.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = "tcp:127.0.0.1:0" });
        using var target = await incoming.IncomingTarget;
        var receive = Task.Run(() => incoming.ReceiveIncoming(target));

        await a.ExecuteAsync("migrate-set-capabilities", Caps(("pause-before-switchover", true), ("return-path", true)));
        // libvirt connects to the target itself and hands the socket over.
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            socket.Connect(target.LocalEndPoint!);
            await a.ExecuteWithFdAsync("getfd", new JsonObject { ["fdname"] = "migrate" }, (int)socket.Handle);
        }
        await a.ExecuteAsync("migrate", new JsonObject { ["uri"] = "fd:migrate", ["detach"] = true, ["resume"] = false });
        await NextEvent(a, "MIGRATION", e => e["data"]!["status"]!.GetValue<string>() == "pre-switchover");
        Assert.Equal(VmState.Paused, src.State);
        var info = (await a.ExecuteAsync("query-migrate"))!.AsObject();
        Assert.Equal("pre-switchover", info["status"]!.GetValue<string>());
        Assert.True(info["ram"]!["transferred"]!.GetValue<long>() > 0, info.ToJsonString());
        Assert.Equal("There's a migration process in progress", await Error(a, "migrate-set-capabilities", Caps(("pause-before-switchover", false))));
        Assert.Equal("Migration not in expected state: pre-switchover", await Error(a, "migrate-continue", new JsonObject { ["state"] = "device" }));
        await Task.Delay(200);
        Assert.False(receive.IsCompleted, "the target got the end of the stream before migrate-continue");
        await a.ExecuteAsync("migrate-continue", new JsonObject { ["state"] = "pre-switchover" });
        info = await WaitMigration(a);
        Assert.True(info["status"]!.GetValue<string>() == "completed", info.ToJsonString());
        await receive.WaitAsync(TimeSpan.FromSeconds(30));

        var events = new List<string>();
        var passes = new List<long>();
        while (a.Events.TryRead(out var e))
        {
            string name = e["event"]!.GetValue<string>();
            if (name == "MIGRATION") events.Add(e["data"]!["status"]!.GetValue<string>());
            if (name == "MIGRATION_PASS") passes.Add(e["data"]!["pass"]!.GetValue<long>());
        }
        Assert.Equal(["device", "completed"], events); // setup, active and pre-switchover were read above
        Assert.Equal("postmigrate", await Status(a));
        Assert.Equal(src.Memory.Read<ulong>(Counter), dst.Memory.Read<ulong>(Counter));
        await b.ExecuteAsync("cont");
        Assert.Equal("running", await Status(b));
        // cont came after the stream arrived; one before it (still inmigrate) would only have asked for a start later.
        Assert.Equal(VmState.Running, dst.State);
        var pass = Assert.Single(passes); // the stop-and-copy pass; the pre-copy ones were read above
        Assert.True(pass >= 2, $"pass {pass}");
    }

    [LinuxGuestFact]
    public async Task Query_block_answers_for_the_inactive_disk_of_a_vm_waiting_for_its_migration()
    {
        string disk = Path.Combine(_dir, "d.raw");
        SharpVmm.Block.ImageFactory.Create(disk, "raw", 1 << 20).Dispose();
        var dstVm = Build(incoming: true, disk);
        var incoming = new MigrationManager(dstVm);
        incoming.ExpectIncoming();
        var (_, b) = await Serve("b.sock", incoming: true, incoming, dstVm);
        // libvirt asks at the destination's start, long before the source hands the disk over.
        var inserted = (await b.ExecuteAsync("query-block"))!.AsArray()[0]!["inserted"]!.AsObject();
        Assert.Equal(disk, inserted["file"]!.GetValue<string>());
        Assert.Equal(1 << 20, inserted["image"]!["virtual-size"]!.GetValue<long>());
        Assert.Equal(1 << 20, inserted["image"]!["actual-size"]!.GetValue<long>());
    }
}
