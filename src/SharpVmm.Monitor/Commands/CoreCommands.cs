using System.Text.Json.Nodes;
using SharpVmm.Monitor.Hmp;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;
using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Monitor.Commands;

/// <summary>The commands every SharpVmm monitor offers: negotiation, queries, the VM lifecycle and the human monitor.</summary>
public static class CoreCommands
{
    public const string Capabilities = "qmp_capabilities";

    public static void Register(QmpCommandTable table, VmMonitor vm, QmpVersion version)
    {
        var hmp = new HumanMonitor(vm, version);

        // Reached only after negotiation: sessions answer the first qmp_capabilities themselves.
        table.Register(Capabilities, _ => throw new QmpException(QmpErrorClass.CommandNotFound,
            "Capabilities negotiation is already complete, command ignored"), Opt("enable", QmpType.Array));

        table.Register("query-commands", _ =>
        {
            var list = new JsonArray();
            foreach (string name in table.Names) list.Add((JsonNode)new JsonObject { ["name"] = name });
            return list;
        });

        table.Register("query-version", _ => VersionObject(version));

        // Built on each call, so commands registered later (by the host's front end) are declared too.
        table.Register("query-qmp-schema", _ => QmpSchema.Build(table));

        table.Register("query-status", _ =>
        {
            string status = vm.StatusName;
            return new JsonObject { ["status"] = status, ["singlestep"] = false, ["running"] = status == "running" };
        });

        table.Register("query-cpus-fast", _ =>
        {
            var cpus = new JsonArray();
            for (int i = 0; i < vm.Vm.VcpuCount; i++)
            {
                cpus.Add((JsonNode)new JsonObject
                {
                    ["thread-id"] = vm.Vm.GetVcpuThreadId(i),
                    ["props"] = new JsonObject { ["core-id"] = i, ["thread-id"] = 0, ["socket-id"] = 0 },
                    ["qom-path"] = $"/machine/cpu[{i}]",
                    ["cpu-index"] = i,
                    ["target"] = "x86_64",
                });
            }
            return cpus;
        });

        table.Register("stop", _ => { vm.Stop(); return null; });
        table.Register("cont", _ => { vm.Cont(); return null; });
        table.Register("system_reset", _ => { vm.Reset(); return null; });
        table.Register("system_powerdown", _ => { vm.Powerdown(); return null; });
        table.Register("quit", call => { vm.Quit(call); return null; });

        table.Register("human-monitor-command",
            call => hmp.Execute(call, call.GetString("command-line")!, call.GetInt("cpu-index")),
            Req("command-line", QmpType.String), Opt("cpu-index", QmpType.Integer));
    }

    public static JsonObject VersionObject(QmpVersion v) => new()
    {
        ["qemu"] = new JsonObject { ["micro"] = v.Micro, ["minor"] = v.Minor, ["major"] = v.Major },
        ["package"] = v.Package,
    };
}
