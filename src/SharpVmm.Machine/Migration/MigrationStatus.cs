namespace SharpVmm.Machine.Migration;

/// <summary>QEMU's MigrationStatus values that SharpVmm goes through (see <see cref="MigrationStatusNames"/>).</summary>
public enum MigrationStatus
{
    None,
    Setup,
    Active,
    /// <summary>The guest is paused before the last copy, waiting for migrate-continue (capability pause-before-switchover).</summary>
    PreSwitchover,
    /// <summary>The guest is paused and the last pages and the machine state are on their way.</summary>
    Device,
    Cancelling,
    Cancelled,
    Completed,
    Failed,
}

public static class MigrationStatusNames
{
    /// <summary>QEMU's wire name ("none", "setup", "active", "pre-switchover", "device", "cancelling", "cancelled", "completed", "failed").</summary>
    public static string Name(this MigrationStatus s) => s switch
    {
        MigrationStatus.None => "none",
        MigrationStatus.Setup => "setup",
        MigrationStatus.Active => "active",
        MigrationStatus.PreSwitchover => "pre-switchover",
        MigrationStatus.Device => "device",
        MigrationStatus.Cancelling => "cancelling",
        MigrationStatus.Cancelled => "cancelled",
        MigrationStatus.Completed => "completed",
        _ => "failed",
    };

    public static bool IsFinished(this MigrationStatus s) => s is MigrationStatus.None or MigrationStatus.Cancelled or MigrationStatus.Completed or MigrationStatus.Failed;
}
