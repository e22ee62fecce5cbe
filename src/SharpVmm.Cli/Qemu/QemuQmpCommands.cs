using System.Text.Json.Nodes;
using SharpVmm.Machine;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Commands;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;
using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Cli.Qemu;

/// <summary>What the QEMU-personality commands answer from: the command line, the VM and the host.</summary>
public sealed record QemuQmpContext(QemuInvocation Invocation, VirtualMachine Vm, AcceleratorKind Accelerator, bool KvmPresent, string MonitorFilename);

/// <summary>
/// The QMP queries a QEMU-driving manager (libvirt) asks an emulator about itself and about the machine it built,
/// answered for SharpVmm: target, accelerators, types and their properties, machines, CPU models, command-line
/// options, chardevs, block nodes, the QOM tree of devices. Registered on the same table as SharpVmm's own
/// commands, so query-commands and query-qmp-schema declare them.
/// </summary>
public static class QemuQmpCommands
{
    public static void Register(QmpCommandTable table, QemuQmpContext ctx)
    {
        table.Register("query-target", _ => new JsonObject { ["arch"] = "x86_64" });
        table.Register("query-kvm", _ => new JsonObject
        {
            ["enabled"] = ctx.Accelerator == AcceleratorKind.Kvm,
            ["present"] = ctx.KvmPresent,
        });
        table.Register("qom-list-types", call => ListTypes(call.GetString("implements"), call.GetBool("abstract") ?? false),
            Opt("implements", QmpType.String), Opt("abstract", QmpType.Boolean));
        table.Register("device-list-properties", call => Properties(call.GetString("typename")!, device: true),
            Req("typename", QmpType.String));
        table.Register("qom-list-properties", call => Properties(call.GetString("typename")!, device: false),
            Req("typename", QmpType.String));
        table.Register("query-machines", _ => Machines(), Opt("compat-props", QmpType.Boolean));
        table.Register("query-cpu-definitions", _ => CpuDefinitions(ctx));
        table.Register("query-command-line-options", call => QemuCommandLineOptions.Query(call.GetString("option")),
            Opt("option", QmpType.String));
        table.Register("query-chardev", _ => Chardevs(ctx));
        table.Register("qom-list", call => QomList(ctx, call.GetString("path")!), Req("path", QmpType.String));
        table.Register("query-hotpluggable-cpus", _ => HotpluggableCpus(ctx));
        table.Register("query-named-block-nodes", _ => NamedBlockNodes(ctx), Opt("flat", QmpType.Boolean));
        // SharpVmm runs no background jobs (block jobs, job-based snapshots): the list is always empty.
        table.Register("query-jobs", _ => new JsonArray());
    }

    private static JsonArray ListTypes(string? implements, bool includeAbstract)
    {
        var list = new JsonArray();
        foreach (var t in QemuTypes.All)
        {
            if (t.Abstract && !includeAbstract) continue;
            if (implements is not null && !QemuTypes.Implements(t, implements)) continue;
            var o = new JsonObject { ["name"] = t.Name };
            if (t.Abstract) o["abstract"] = true;
            o["parent"] = t.Parent;
            list.Add((JsonNode)o);
        }
        return list;
    }

    /// <summary>
    /// Classes SharpVmm does not have but libvirt 9.0 must get a property list for: its probe dereferences the list
    /// of these two unconditionally and crashes (libvirtd segfault, measured) on QEMU's DeviceNotFound. They are
    /// not in qom-list-types, so libvirt never uses them; an empty list says no property of them is usable.
    /// </summary>
    private static readonly string[] ListedWithoutProperties = ["memory-backend-file", "memory-backend-memfd"];

    private static JsonArray Properties(string typename, bool device)
    {
        if (!device && Array.IndexOf(ListedWithoutProperties, typename) >= 0) return new JsonArray();
        var t = QemuTypes.Find(typename);
        if (t is null || (device && !QemuTypes.Implements(t, "device")))
            throw new QmpException(QmpErrorClass.DeviceNotFound, device ? $"Device '{typename}' not found" : $"Class '{typename}' not found");
        if (device && t.Abstract) throw QmpException.Generic($"Parameter 'typename' expects a non-abstract device type");
        var list = new JsonArray();
        foreach (var (name, type) in QemuTypes.AllProperties(t))
            list.Add((JsonNode)new JsonObject { ["name"] = name, ["type"] = type });
        return list;
    }

    private static JsonArray Machines() => new(
        new JsonObject
        {
            ["hotpluggable-cpus"] = false, ["name"] = "microvm", ["numa-mem-supported"] = false, ["default-cpu-type"] = "qemu64-x86_64-cpu",
            ["is-default"] = true, ["cpu-max"] = VmConfig.MaxVcpus, ["deprecated"] = false,
        },
        new JsonObject
        {
            ["hotpluggable-cpus"] = false, ["name"] = "none", ["numa-mem-supported"] = false, ["cpu-max"] = 1, ["deprecated"] = false,
        });

    private static JsonArray CpuDefinitions(QemuQmpContext ctx)
    {
        var list = new JsonArray();
        foreach (string name in QemuCpuModels.Names)
        {
            // host is the host's CPU: usable only under KVM, as in QEMU.
            var unavailable = new JsonArray();
            if (name == "host" && !ctx.KvmPresent) unavailable.Add((JsonNode)"kvm");
            list.Add((JsonNode)new JsonObject
            {
                ["name"] = name,
                ["typename"] = QemuCpuModels.TypeName(name),
                ["unavailable-features"] = unavailable,
                ["static"] = false,
                ["migration-safe"] = name == "qemu64",
                ["deprecated"] = false,
            });
        }
        return list;
    }

    private static JsonArray Chardevs(QemuQmpContext ctx)
    {
        var list = new JsonArray();
        foreach (var (id, c) in ctx.Invocation.Chardevs)
        {
            string filename = c.Backend switch
            {
                "pty" => ctx.Vm.Devices.SerialBackend is SharpVmm.Devices.Serial.PtyBackend pty ? "pty:" + pty.Path : "pty",
                "file" => "file",
                "stdio" => "stdio",
                "null" => "null",
                _ when ctx.Invocation.Monitors.Any(m => m.ChardevId == id) => ctx.MonitorFilename,
                _ => "unix:" + c.Path + ",server=on",
            };
            list.Add((JsonNode)new JsonObject { ["frontend-open"] = true, ["filename"] = filename, ["label"] = id });
        }
        return list;
    }

    private static JsonArray QomList(QemuQmpContext ctx, string path)
    {
        var q = ctx.Invocation;
        if (path == "/machine/peripheral")
        {
            var list = new JsonArray();
            if (q.SerialChardev is not null && q.Chardevs.ContainsKey(q.SerialChardev) && q.SerialDeviceId is { } serialId)
                list.Add((JsonNode)new JsonObject { ["name"] = serialId, ["type"] = "child<isa-serial>" });
            foreach (var d in q.Disks)
                if (d.Id is not null) list.Add((JsonNode)new JsonObject { ["name"] = d.Id, ["type"] = "child<virtio-blk-pci>" });
            foreach (var n in q.Nics)
                if (n.Id is not null) list.Add((JsonNode)new JsonObject { ["name"] = n.Id, ["type"] = "child<virtio-net-pci>" });
            return list;
        }
        for (int i = 0; i < ctx.Vm.VcpuCount; i++)
        {
            if (path != $"/machine/cpu[{i}]") continue;
            return new JsonArray(new JsonObject { ["name"] = "type", ["type"] = "string" });
        }
        throw new QmpException(QmpErrorClass.DeviceNotFound, $"Device '{path}' not found");
    }

    private static JsonArray HotpluggableCpus(QemuQmpContext ctx)
    {
        var list = new JsonArray();
        for (int i = ctx.Vm.VcpuCount - 1; i >= 0; i--)
        {
            list.Add((JsonNode)new JsonObject
            {
                ["props"] = new JsonObject { ["core-id"] = i, ["thread-id"] = 0, ["socket-id"] = 0 },
                ["vcpus-count"] = 1,
                ["qom-path"] = $"/machine/cpu[{i}]",
                ["type"] = QemuCpuModels.TypeName(ctx.Invocation.Cpu ?? "qemu64"),
            });
        }
        return list;
    }

    /// <summary>
    /// query-blockstats' names for a disk as QEMU 7.2 gives them: a device with an id on a -blockdev node has an
    /// anonymous backend (device ""), its backend's QOM path below /machine/peripheral (libvirt finds a virtio disk's
    /// counters under that path) and the format node's name.
    /// </summary>
    public static BlockNodeNames BlockNames(QemuInvocation q, int index, BlockDeviceInfo drive)
    {
        if (index >= q.Disks.Count) return new BlockNodeNames(drive.DriveId, drive.DeviceId, drive.DriveId);
        var disk = q.Disks[index];
        return disk.Id is { } id
            ? new BlockNodeNames("", $"/machine/peripheral/{id}/virtio-backend", disk.Drive)
            : new BlockNodeNames(disk.Drive, drive.DeviceId, disk.Drive);
    }

    /// <summary>The disks' nodes under the node names the command line gave them (libvirt's own names), top node first.</summary>
    private static JsonArray NamedBlockNodes(QemuQmpContext ctx)
    {
        var list = new JsonArray();
        var drives = BlockCommands.Drives(ctx.Vm);
        for (int i = 0; i < drives.Count && i < ctx.Invocation.Disks.Count; i++)
        {
            string node = ctx.Invocation.Disks[i].Drive;
            list.Add((JsonNode)BlockCommands.Inserted(drives[i], node));
        }
        return list;
    }
}
