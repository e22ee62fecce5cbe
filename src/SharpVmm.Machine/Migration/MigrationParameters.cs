namespace SharpVmm.Machine.Migration;

/// <summary>The tunables QEMU's migrate-set-parameters offers that SharpVmm honours, with QEMU's defaults.</summary>
public sealed record MigrationParameters
{
    /// <summary>QEMU's default: 300 ms.</summary>
    public const long DefaultDowntimeLimitMs = 300;
    /// <summary>QEMU's default max-bandwidth: 128 MiB/s.</summary>
    public const long DefaultMaxBandwidth = 128L << 20;
    /// <summary>QEMU caps downtime-limit at 2000 seconds.</summary>
    public const long MaxDowntimeLimitMs = 2_000_000;

    /// <summary>The longest the guest may be paused for the final copy, in milliseconds.</summary>
    public long DowntimeLimitMs { get; init; } = DefaultDowntimeLimitMs;

    /// <summary>Bytes per second on the wire at most; 0 means no limit.</summary>
    public long MaxBandwidth { get; init; } = DefaultMaxBandwidth;

    /// <summary>Pre-copy rounds after which the rest is copied with the guest paused even if it does not fit the limit (a guest that dirties faster than the link would never converge).</summary>
    public int MaxRounds { get; init; } = 30;

    public void Validate()
    {
        if (DowntimeLimitMs is < 0 or > MaxDowntimeLimitMs)
            throw new MigrationException($"downtime-limit {DowntimeLimitMs} is out of range: use 0 to {MaxDowntimeLimitMs} ms");
        if (MaxBandwidth < 0)
            throw new MigrationException($"max-bandwidth {MaxBandwidth} is out of range: use a byte rate of 0 (no limit) or more");
        if (MaxRounds < 1) throw new MigrationException("the migration needs at least one pre-copy round");
    }
}
