using System.Text.Json;
using System.Text.Json.Nodes;
using SharpVmm.Monitor.Protocol;
using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// query-migrate-capabilities and migrate-set-capabilities. SharpVmm's only switchable capability is "events"
/// (whether MIGRATION events are sent; on by default here, since SharpVmm always sent them). QEMU's other
/// capabilities may be set to false, which is what SharpVmm's migration is; asking for one of them on is refused.
/// </summary>
public sealed class MigrationCapabilities
{
    private static readonly string[] QemuCapabilities =
    [
        "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events", "postcopy-ram", "x-colo",
        "release-ram", "block", "return-path", "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
        "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
    ];

    private volatile bool _events = true;

    /// <summary>Whether MIGRATION events go out.</summary>
    public bool Events => _events;

    public static MigrationCapabilities Register(QmpCommandTable table)
    {
        var caps = new MigrationCapabilities();
        table.Register("query-migrate-capabilities", _ =>
            new JsonArray(new JsonObject { ["state"] = caps._events, ["capability"] = "events" }));
        table.Register("migrate-set-capabilities", call =>
        {
            var list = (JsonArray)call.Arguments["capabilities"]!;
            bool? events = null;
            foreach (var item in list)
            {
                if (item is not JsonObject o || o["capability"] is not JsonValue name || name.GetValueKind() != JsonValueKind.String
                    || o["state"] is not JsonValue state || state.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
                    throw QmpException.Generic("Invalid parameter type for 'capabilities', expected: array of {capability, state}");
                string cap = name.GetValue<string>();
                bool on = state.GetValue<bool>();
                if (Array.IndexOf(QemuCapabilities, cap) < 0)
                    throw QmpException.Generic($"Parameter 'capability' does not accept value '{cap}'");
                if (cap == "events") events = on;
                else if (on) throw QmpException.Generic($"Migration capability '{cap}' is not supported by SharpVmm");
            }
            if (events is { } e) caps._events = e;
            return null;
        }, Req("capabilities", QmpType.Array));
        return caps;
    }
}
