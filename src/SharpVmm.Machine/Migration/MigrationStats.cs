namespace SharpVmm.Machine.Migration;

/// <summary>
/// A snapshot of a migration's progress, in QEMU's query-migrate terms (bytes, pages, milliseconds). Immutable: the
/// job publishes a new one as it goes.
/// </summary>
public sealed record MigrationStats
{
    public MigrationStatus Status { get; init; }
    /// <summary>Bytes put on the wire so far, headers included.</summary>
    public long Transferred { get; init; }
    /// <summary>Bytes of RAM still to send (dirty pages counted as full pages).</summary>
    public long Remaining { get; init; }
    /// <summary>Guest RAM size.</summary>
    public long Total { get; init; }
    /// <summary>Pages sent as zero markers.</summary>
    public long Duplicate { get; init; }
    /// <summary>Pages sent with their data.</summary>
    public long Normal { get; init; }
    public long NormalBytes => Normal * MigrationProtocol.PageSize;
    /// <summary>Pages dirtied per second during the last pre-copy round.</summary>
    public long DirtyPagesRate { get; init; }
    /// <summary>Megabits per second during the last round.</summary>
    public double Mbps { get; init; }
    /// <summary>Pre-copy rounds completed (QEMU's dirty-sync-count).</summary>
    public int Rounds { get; init; }
    /// <summary>Milliseconds since the migration began (frozen at its end).</summary>
    public long TotalTimeMs { get; init; }
    /// <summary>Milliseconds from the start until the first RAM round began.</summary>
    public long SetupTimeMs { get; init; }
    /// <summary>Milliseconds the guest was paused; known once completed.</summary>
    public long? DowntimeMs { get; init; }
    /// <summary>The downtime the rest would cost now, at the measured bandwidth.</summary>
    public long ExpectedDowntimeMs { get; init; }
    /// <summary>Why it failed, for query-migrate's error-desc.</summary>
    public string? Error { get; init; }
    /// <summary>Notes for the user (e.g. the dirty log is unreliable and a full copy is used).</summary>
    public string? Note { get; init; }
}
