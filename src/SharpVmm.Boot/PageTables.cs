using System.Buffers.Binary;
using SharpVmm.Memory;

namespace SharpVmm.Boot;

/// <summary>
/// Identity-mapped 4-level page tables with 2 MiB pages (PML4 → one PDPT → one page directory per GiB). 2 MiB pages
/// need nothing beyond long mode itself, unlike 1 GiB pages (PDPE1GB), so every CPU model we expose can walk them.
/// The whole range is mapped, MMIO hole included, so the guest can reach the LAPIC, IOAPIC and virtio-mmio windows.
/// </summary>
public static class PageTables
{
    public const ulong Present = 1, Writable = 2, PageSize = 0x80;
    public const ulong OneGiB = 1UL << 30;
    public const ulong TwoMiB = 1UL << 21;

    /// <summary>
    /// How much an identity map for <paramref name="memory"/> covers: at least 4 GiB (all 32-bit addresses, MMIO
    /// hole included), more when RAM extends beyond it, capped at <see cref="LowMemoryLayout.MaxPageDirectories"/> GiB.
    /// </summary>
    public static ulong CoverageFor(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ulong top = 4 * OneGiB;
        foreach (var r in memory.Regions) top = Math.Max(top, r.GuestEnd);
        ulong gib = (top + OneGiB - 1) / OneGiB;
        return Math.Min(gib, LowMemoryLayout.MaxPageDirectories) * OneGiB;
    }

    /// <summary>
    /// Writes the tables at the fixed addresses of <see cref="LowMemoryLayout"/> and returns the CR3 value.
    /// <paramref name="coverage"/> is rounded up to whole GiB.
    /// </summary>
    public static ulong Write(GuestMemory memory, ulong coverage)
    {
        ArgumentNullException.ThrowIfNull(memory);
        int directories = (int)Math.Max(1, (coverage + OneGiB - 1) / OneGiB);
        if (coverage > OneGiB * LowMemoryLayout.MaxPageDirectories)
            throw new BootException($"an identity map of {coverage >> 30} GiB needs more page directories than the {LowMemoryLayout.MaxPageDirectories} the loader area holds");

        Span<byte> page = stackalloc byte[4096];

        page.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(page, LowMemoryLayout.Pdpt | Present | Writable);
        memory.Write(LowMemoryLayout.Pml4, page);

        page.Clear();
        for (int i = 0; i < directories; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(page[(i * 8)..], DirectoryAddress(i) | Present | Writable);
        memory.Write(LowMemoryLayout.Pdpt, page);

        for (int d = 0; d < directories; d++)
        {
            for (int i = 0; i < 512; i++)
            {
                ulong physical = (ulong)d * OneGiB + (ulong)i * TwoMiB;
                BinaryPrimitives.WriteUInt64LittleEndian(page[(i * 8)..], physical | Present | Writable | PageSize);
            }
            memory.Write(DirectoryAddress(d), page);
        }
        return LowMemoryLayout.Pml4;
    }

    private static ulong DirectoryAddress(int index) => LowMemoryLayout.PageDirectories + (ulong)index * 4096;
}
