using System.Text.Json.Nodes;
using SharpVmm.Cli.Qemu;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Commands;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Cli.Tests.Qemu;

/// <summary>
/// The QMP conversation of libvirt 9.0's capability probe (../shared/LIBVIRT.md, table (b)) against the empty
/// machine the probe argv builds, on the emulator: every reply libvirt treats as fatal is present and well-formed,
/// and what it tolerates is refused with the class it tolerates.
/// </summary>
public sealed class QemuProbeQmpTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-probe-").FullName;
    private VirtualMachine? _vm;
    private QmpServer? _server;
    private QmpClient? _client;

    private QmpClient C => _client!;

    public async Task InitializeAsync()
    {
        var q = QemuArgParser.Parse(["-S", "-no-user-config", "-nodefaults", "-nographic", "-machine", "none,accel=tcg",
            "-qmp", $"unix:{_dir}/qmp.monitor,server=on,wait=off"]);
        var config = QemuVmConfig.Build(q);
        _vm = VmBuilder.Build(config);
        _server = QmpServer.Start(_vm, $"{_dir}/qmp.monitor");
        QemuQmpCommands.Register(_server.Commands, new QemuQmpContext(q, _vm, config.Accelerator, KvmPresent: false, _server.Address.ToString()));
        _vm.StartVcpuThreads();
        _client = await QmpClient.ConnectAndNegotiateAsync($"unix:{_dir}/qmp.monitor");
    }

    public async Task DisposeAsync()
    {
        if (_client is not null) await _client.DisposeAsync();
        _server?.Dispose();
        _vm?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<JsonArray> Array(string command, JsonObject? args = null) => Assert.IsType<JsonArray>(await C.ExecuteAsync(command, args));

    private async Task<QmpException> Fails(string command, JsonObject? args = null)
        => await Assert.ThrowsAsync<QmpException>(() => C.ExecuteAsync(command, args));

    private static List<string> Names(JsonArray a) => [.. a.Select(x => (string)x!["name"]!)];

    [Fact]
    public async Task Version_target_and_kvm_are_what_libvirt_requires()
    {
        var v = (await C.ExecuteAsync("query-version"))!;
        int major = (int)v["qemu"]!["major"]!, minor = (int)v["qemu"]!["minor"]!;
        Assert.True(major > 4 || (major == 4 && minor >= 2), "libvirt 9.0 needs QEMU >= 4.2");
        Assert.StartsWith("SharpVmm ", (string)v["package"]!);
        Assert.Equal("x86_64", (string)(await C.ExecuteAsync("query-target"))!["arch"]!);
        var kvm = (await C.ExecuteAsync("query-kvm"))!;
        Assert.False((bool)kvm["enabled"]!);
        Assert.False((bool)kvm["present"]!);
    }

    [Fact]
    public async Task Types_include_tcg_accel_and_the_devices_the_command_line_takes()
    {
        var types = Names(await Array("qom-list-types"));
        Assert.Contains("tcg-accel", types);
        foreach (string t in QemuDeviceParser.Types) Assert.Contains(t, types);
        Assert.DoesNotContain("sev-guest", types);
        Assert.DoesNotContain("iothread", types);
        var machines = Names(await Array("qom-list-types", new JsonObject { ["implements"] = "machine" }));
        Assert.Equal(["microvm-machine", "none-machine"], machines);
    }

    [Fact]
    public async Task Device_and_class_properties_answer_or_refuse_with_DeviceNotFound()
    {
        var blk = Names(await Array("device-list-properties", new JsonObject { ["typename"] = "virtio-blk-pci" }));
        Assert.Contains("drive", blk);
        Assert.Equal("DeviceNotFound", (await Fails("device-list-properties", new JsonObject { ["typename"] = "vfio-pci" })).ErrorClass);
        Assert.Equal("DeviceNotFound", (await Fails("qom-list-properties", new JsonObject { ["typename"] = "iothread" })).ErrorClass);
        // libvirt 9.0 crashes on DeviceNotFound for these two (see QemuQmpCommands): an empty list instead.
        Assert.Empty(await Array("qom-list-properties", new JsonObject { ["typename"] = "memory-backend-file" }));
        Assert.Empty(await Array("qom-list-properties", new JsonObject { ["typename"] = "memory-backend-memfd" }));
        // No "unavailable-features" on the CPU type: libvirt then does not read every CPU feature with qom-get at start.
        Assert.DoesNotContain("unavailable-features", Names(await Array("qom-list-properties", new JsonObject { ["typename"] = "max-x86_64-cpu" })));
        // Machine properties listed are the ones -machine accepts.
        var machineProps = Names(await Array("qom-list-properties", new JsonObject { ["typename"] = "none-machine" }));
        Assert.All(machineProps, p => Assert.Contains(p, new[] { "type", "accel", "usb", "dump-guest-core", "memory-backend", "graphics" }));
    }

    [Fact]
    public async Task Machines_and_cpu_models_have_the_fields_libvirt_reads()
    {
        var machines = await Array("query-machines");
        var microvm = machines.Single(m => (string)m!["name"]! == "microvm")!;
        Assert.True((bool)microvm["is-default"]!);
        Assert.False((bool)microvm["hotpluggable-cpus"]!);
        Assert.Equal("qemu64-x86_64-cpu", (string)microvm["default-cpu-type"]!);
        // No default-ram-id: libvirt then gives RAM with -m rather than a memory-backend object.
        Assert.Null(microvm["default-ram-id"]);
        Assert.DoesNotContain(machines, m => ((string)m!["name"]!).StartsWith("pc", StringComparison.Ordinal));
        var cpus = await Array("query-cpu-definitions");
        Assert.All(cpus, c => Assert.NotNull(c!["name"]));
        var qemu64 = cpus.Single(c => (string)c!["name"]! == "qemu64")!;
        Assert.Empty(Assert.IsType<JsonArray>(qemu64["unavailable-features"]));
    }

    [Fact]
    public async Task Command_line_options_migration_capabilities_and_tolerated_errors()
    {
        var options = (await Array("query-command-line-options")).Select(o => (string)o!["option"]!).ToList();
        Assert.Contains("machine", options);
        // Where the filter can be installed, libvirt is told, and then adds -sandbox on,... to every domain.
        Assert.Equal(QemuSandbox.Available, options.Contains("sandbox"));
        Assert.IsType<JsonArray>(await C.ExecuteAsync("query-migrate-capabilities"));
        Assert.Equal("CommandNotFound", (await Fails("query-tpm-models")).ErrorClass);
        Assert.Equal("CommandNotFound", (await Fails("query-tpm-types")).ErrorClass);
    }

    [NeedsFact(Need.Seccomp)]
    public async Task Sandbox_is_listed_with_exactly_the_keys_the_parser_takes()
    {
        var reply = Assert.Single(await Array("query-command-line-options", new JsonObject { ["option"] = "sandbox" }));
        var parameters = reply!["parameters"]!.AsArray().Select(p => ((string)p!["name"]!, (string)p!["type"]!)).ToList();
        // QEMU 7.2's keys and types, which libvirt looks for.
        Assert.Equal([("enable", "boolean"), ("obsolete", "string"), ("elevateprivileges", "string"), ("spawn", "string"), ("resourcecontrol", "string")], parameters);
        foreach (var (name, type) in parameters)
            Assert.True(QemuArgParser.Parse(["-sandbox", type == "boolean" ? $"{name}=on" : $"on,{name}=deny"]).Sandbox);
        Assert.Throws<QemuArgException>(() => QemuArgParser.Parse(["-sandbox", "on,fork=deny"]));
    }

    [Fact]
    public async Task Schema_declares_exactly_the_commands_answered_and_every_type_it_names()
    {
        var schema = await Array("query-qmp-schema");
        var commands = Names(await Array("query-commands"));
        var byName = schema.ToDictionary(e => (string)e!["name"]!, e => e!.AsObject());
        var declared = schema.Where(e => (string)e!["meta-type"]! == "command").Select(e => (string)e!["name"]!).ToList();
        Assert.Equal(commands.Order(), declared.Order());
        foreach (string c in new[] { "query-kvm", "qom-list-types", "query-chardev", "cont", "query-qmp-schema" }) Assert.Contains(c, declared);
        Assert.DoesNotContain("object-add", declared);
        Assert.DoesNotContain("device_add", declared);
        foreach (var e in schema)
        {
            foreach (string key in new[] { "arg-type", "ret-type", "element-type" })
                if (e![key] is { } t) Assert.True(byName.ContainsKey((string)t!), $"{e["name"]}'s {key} {t} is declared");
            if (e!["members"] is JsonArray members)
                foreach (var m in members) Assert.True(byName.ContainsKey((string)m!["type"]!), $"member type {m["type"]} is declared");
        }
        // Arguments come from the table: qom-list-types takes an optional "implements" string.
        var qlt = byName[(string)byName["qom-list-types"]["arg-type"]!];
        var implements = ((JsonArray)qlt["members"]!).Single(m => (string)m!["name"]! == "implements")!;
        Assert.Equal("str", (string)implements["type"]!);
        Assert.True(implements.AsObject().ContainsKey("default"));
        Assert.Contains(schema, e => (string)e!["meta-type"]! == "event" && (string)e["name"]! == "SHUTDOWN");
    }

    [Fact]
    public async Task The_empty_machine_waits_in_prelaunch_with_real_vcpu_thread_ids()
    {
        Assert.Equal("prelaunch", (string)(await C.ExecuteAsync("query-status"))!["status"]!);
        var cpu = Assert.Single(await Array("query-cpus-fast"))!;
        int tid = (int)cpu["thread-id"]!;
        Assert.NotEqual(0, tid);
        Assert.True(Directory.Exists($"/proc/self/task/{tid}"), "the vCPU thread id is a thread of this process");
        Assert.Equal("/machine/cpu[0]", (string)cpu["qom-path"]!);
        Assert.Empty(await Array("qom-list", new JsonObject { ["path"] = "/machine/peripheral" }));
        Assert.Empty(await Array("query-named-block-nodes", new JsonObject { ["flat"] = true }));
        Assert.Empty(await Array("query-jobs")); // libvirt's reconnect after a libvirtd restart needs it answered
    }
}
