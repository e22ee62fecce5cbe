namespace SharpVmm.Machine.Migration;

/// <summary>
/// The migration capabilities of QEMU's migrate-set-capabilities that SharpVmm implements, with their states.
/// The stream's return path (round and final acks) is always used where the channel is a socket, so return-path
/// only records what the manager asked.
/// </summary>
public sealed record MigrationCapabilitySet
{
    /// <summary>MIGRATION and MIGRATION_PASS events (on by default here: SharpVmm always sent them).</summary>
    public bool Events { get; init; } = true;
    public bool ReturnPath { get; init; }
    /// <summary>The source pauses before the last copy in status pre-switchover until migrate-continue.</summary>
    public bool PauseBeforeSwitchover { get; init; }
    /// <summary>The target opens the disks at cont rather than when the stream has arrived.</summary>
    public bool LateBlockActivate { get; init; }

    /// <summary>The names, in query-migrate-capabilities order.</summary>
    public static readonly string[] Names = ["events", "return-path", "pause-before-switchover", "late-block-activate"];

    public bool Get(string name) => name switch
    {
        "events" => Events,
        "return-path" => ReturnPath,
        "pause-before-switchover" => PauseBeforeSwitchover,
        "late-block-activate" => LateBlockActivate,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a capability SharpVmm implements"),
    };

    public MigrationCapabilitySet With(string name, bool on) => name switch
    {
        "events" => this with { Events = on },
        "return-path" => this with { ReturnPath = on },
        "pause-before-switchover" => this with { PauseBeforeSwitchover = on },
        "late-block-activate" => this with { LateBlockActivate = on },
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a capability SharpVmm implements"),
    };
}
