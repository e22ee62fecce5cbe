using Microsoft.Extensions.Logging;
using SharpVmm.Monitor.Commands;

namespace SharpVmm.Monitor.Server;

public sealed record QmpServerOptions
{
    public QmpVersion Version { get; init; } = QmpVersion.Default;
    public ILogger? Logger { get; init; }

    /// <summary>Presses a power button of the host's for system_powerdown; null presses the machine's ACPI power button.</summary>
    public Action? PowerButton { get; init; }

    /// <summary>Messages queued for one client before it is considered stuck and disconnected.</summary>
    public int MaxQueuedMessages { get; init; } = 4096;

    /// <summary>
    /// Clients served at once (QEMU serves one per monitor); a connection beyond that gets one QMP error line and is
    /// closed, so idle connections cannot exhaust the process's descriptors and memory.
    /// </summary>
    public int MaxClients { get; init; } = 16;

    /// <summary>How long closing the server waits for queued replies and events to reach clients.</summary>
    public TimeSpan FlushTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Listen but serve nobody until <see cref="QmpServer.Open"/>: the creator registers more commands first, so a
    /// client that connects at once (libvirt) never finds one missing. Connections wait in the listen backlog.
    /// </summary>
    public bool StartClosed { get; init; }

    /// <summary>The VM's migrations, shared with whoever started it (<c>--incoming</c>); null: the server makes its own.</summary>
    public SharpVmm.Machine.Migration.MigrationManager? Migration { get; init; }
}
