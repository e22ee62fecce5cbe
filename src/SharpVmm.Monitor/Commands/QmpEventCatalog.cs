using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// The events SharpVmm's monitor sends and the members of their "data", for query-qmp-schema. Keep in step with
/// <see cref="Server.VmMonitor"/>, MigrationCommands and MemoryCommands, which emit them.
/// </summary>
public static class QmpEventCatalog
{
    public static readonly (string Name, QmpParameter[] Data)[] Events =
    [
        ("SHUTDOWN", [Req("guest", QmpType.Boolean), Req("reason", QmpType.String)]),
        ("POWERDOWN", []),
        ("RESET", [Req("guest", QmpType.Boolean), Req("reason", QmpType.String)]),
        ("STOP", []),
        ("RESUME", []),
        ("GUEST_PANICKED", [Req("action", QmpType.String)]),
        ("MIGRATION", [Req("status", QmpType.String)]),
        ("BALLOON_CHANGE", [Req("actual", QmpType.Integer)]),
    ];
}
