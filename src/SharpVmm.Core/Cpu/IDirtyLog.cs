using SharpVmm.Memory;

namespace SharpVmm.Core.Cpu;

/// <summary>
/// Guest stores an accelerator sees that the VMM's own <see cref="MemoryRegion.Dirty"/> bitmaps do not: under KVM the
/// guest writes RAM natively and only the kernel's dirty log knows. An accelerator whose every guest store goes
/// through those bitmaps (the emulator) has no dirty log of its own.
/// </summary>
public interface IDirtyLog
{
    /// <summary>
    /// Whether the log really records a guest store (some KVMs never set a bit); <paramref name="detail"/> says
    /// what was seen, for the log.
    /// </summary>
    bool ProbeDirtyLogWorks(out string detail);

    /// <summary>Turns logging on or off for every RAM region.</summary>
    void SetDirtyLogging(bool enabled);

    /// <summary>Moves the pages logged since the last call for <paramref name="region"/> into <paramref name="bitmap"/> (one bit per 4 KiB page, overwritten).</summary>
    void HarvestDirtyLog(MemoryRegion region, Span<ulong> bitmap);
}
