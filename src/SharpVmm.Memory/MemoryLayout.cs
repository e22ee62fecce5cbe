namespace SharpVmm.Memory;

/// <summary>
/// The x86 guest-physical map: RAM from 0 up to the 32-bit MMIO hole, the hole itself
/// (devices, LAPIC, IOAPIC live there), and any RAM beyond it relocated above 4 GiB.
/// </summary>
public static class MemoryLayout
{
    public const ulong MmioHoleStart = 0xC000_0000;
    public const ulong FourGiB = 0x1_0000_0000;
    public const ulong MmioHoleSize = FourGiB - MmioHoleStart;

    /// <summary>Splits a RAM size into the (base, size) ranges it occupies around the MMIO hole.</summary>
    public static IReadOnlyList<(ulong Base, ulong Size)> RamRanges(ulong ramSize)
    {
        if (ramSize == 0) throw new ArgumentOutOfRangeException(nameof(ramSize), "guest RAM size must be positive");
        if (ramSize <= MmioHoleStart) return [(0UL, ramSize)];
        return [(0UL, MmioHoleStart), (FourGiB, ramSize - MmioHoleStart)];
    }
}
