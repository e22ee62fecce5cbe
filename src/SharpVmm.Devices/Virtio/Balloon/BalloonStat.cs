namespace SharpVmm.Devices.Virtio.Balloon;

/// <summary>The memory statistics a balloon driver reports on the stats queue (virtio 1.x, 5.5.6.3), under QEMU's names.</summary>
public static class BalloonStat
{
    /// <summary>QEMU's guest-stats names, indexed by the virtio tag (VIRTIO_BALLOON_S_*).</summary>
    private static readonly string[] Names =
    [
        "stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults", "stat-free-memory",
        "stat-total-memory", "stat-available-memory", "stat-disk-caches", "stat-htlb-pgalloc", "stat-htlb-pgfail",
    ];

    public const ushort FreeMemory = 4, TotalMemory = 5, AvailableMemory = 6;

    /// <summary>The name of a tag; tags this device does not know (newer drivers add some) get "stat-tag-N".</summary>
    public static string Name(ushort tag) => tag < Names.Length ? Names[tag] : $"stat-tag-{tag}";
}
