using System.Text.Json;
using System.Text.Json.Nodes;
using SharpVmm.Machine.Migration;
using SharpVmm.Monitor.Protocol;
using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// query-migrate-capabilities and migrate-set-capabilities over the manager's <see cref="MigrationCapabilitySet"/>:
/// events, return-path, pause-before-switchover and late-block-activate are listed and switchable. QEMU's other
/// capabilities are not listed (so libvirt does not ask for them); setting one false is accepted (that is what
/// SharpVmm's migration is), setting one true is refused. A list is applied whole or not at all.
/// </summary>
public static class MigrationCapabilityCommands
{
    private static readonly string[] QemuCapabilities =
    [
        "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events", "postcopy-ram", "x-colo",
        "release-ram", "block", "return-path", "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
        "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
        "switchover-ack", "dirty-limit", "mapped-ram",
    ];

    public static void Register(QmpCommandTable table, MigrationManager migration)
    {
        table.Register("query-migrate-capabilities", _ =>
        {
            var caps = migration.Capabilities;
            var list = new JsonArray();
            foreach (string name in MigrationCapabilitySet.Names)
                list.Add((JsonNode)new JsonObject { ["state"] = caps.Get(name), ["capability"] = name });
            return list;
        });
        table.Register("migrate-set-capabilities", call =>
        {
            var list = (JsonArray)call.Arguments["capabilities"]!;
            var caps = migration.Capabilities;
            foreach (var item in list)
            {
                if (item is not JsonObject o || o["capability"] is not JsonValue name || name.GetValueKind() != JsonValueKind.String
                    || o["state"] is not JsonValue state || state.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
                    throw QmpException.Generic("Invalid parameter type for 'capabilities', expected: array of {capability, state}");
                string cap = name.GetValue<string>();
                bool on = state.GetValue<bool>();
                if (Array.IndexOf(QemuCapabilities, cap) < 0)
                    throw QmpException.Generic($"Parameter 'capability' does not accept value '{cap}'");
                if (Array.IndexOf(MigrationCapabilitySet.Names, cap) >= 0) caps = caps.With(cap, on);
                else if (on) throw QmpException.Generic($"Migration capability '{cap}' is not supported by this emulator (SharpVmm)");
            }
            try { migration.Capabilities = caps; }
            catch (MigrationException ex) { throw QmpException.Generic(ex.Message); }
            return null;
        }, Req("capabilities", QmpType.Array));
    }
}
