using SharpVmm.Memory;

namespace SharpVmm.Boot;

/// <summary>BIOS e820 address range types (ACPI spec, "System Address Map Interfaces").</summary>
public enum E820Type : uint
{
    Ram = 1,
    Reserved = 2,
    /// <summary>ACPI tables; reclaimable once the OS has read them.</summary>
    Acpi = 3,
    Nvs = 4,
    Unusable = 5,
}

public readonly record struct E820Entry(ulong Address, ulong Size, E820Type Type)
{
    public ulong End => Address + Size;
}

/// <summary>
/// The guest-physical memory map a PC firmware would report, built from the RAM regions of a
/// <see cref="GuestMemory"/>:
/// RAM below the EBDA, the EBDA reserved, the VGA/option-ROM window [0xA0000, 0xE0000) left out, the BIOS area
/// [0xE0000, 1 MiB) reserved (where the RSDP and, by default, the ACPI tables live), RAM from 1 MiB, RAM above 4 GiB.
/// The MMIO hole is never listed because no region covers it. A table range given is marked ACPI, rounded out to whole pages.
/// </summary>
public static class E820
{
    /// <summary>struct boot_params holds at most this many entries (E820_MAX_ENTRIES_ZEROPAGE).</summary>
    public const int MaxZeroPageEntries = 128;
    private const ulong PageMask = 0xFFF;

    public static IReadOnlyList<E820Entry> Build(GuestMemory memory, ulong acpiTablesBase = 0, ulong acpiTablesLength = 0)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var pieces = new List<E820Entry>();
        foreach (var r in memory.Regions) pieces.Add(new E820Entry(r.GuestBase, r.Size, E820Type.Ram));

        Overlay(pieces, LowMemoryLayout.EbdaStart, LowMemoryLayout.VgaStart, E820Type.Reserved);
        Overlay(pieces, LowMemoryLayout.VgaStart, LowMemoryLayout.BiosAreaStart, null);
        Overlay(pieces, LowMemoryLayout.BiosAreaStart, LowMemoryLayout.OneMiB, E820Type.Reserved);
        if (acpiTablesLength != 0)
        {
            if (acpiTablesBase + acpiTablesLength < acpiTablesBase || acpiTablesBase + acpiTablesLength > ulong.MaxValue - PageMask)
                throw new BootException($"ACPI table range 0x{acpiTablesBase:x}+0x{acpiTablesLength:x} wraps the address space");
            // Whole pages: the OS manages RAM in pages, and a partial page next to the tables would be unusable anyway.
            ulong start = acpiTablesBase & ~PageMask;
            ulong end = (acpiTablesBase + acpiTablesLength + PageMask) & ~PageMask;
            Overlay(pieces, start, end, E820Type.Acpi);
        }

        pieces.Sort((a, b) => a.Address.CompareTo(b.Address));
        var merged = new List<E820Entry>(pieces.Count);
        foreach (var p in pieces)
        {
            if (merged.Count > 0 && merged[^1].Type == p.Type && merged[^1].End == p.Address)
                merged[^1] = merged[^1] with { Size = merged[^1].Size + p.Size };
            else
                merged.Add(p);
        }
        if (merged.Count > MaxZeroPageEntries)
            throw new BootException($"the memory map has {merged.Count} entries, more than the {MaxZeroPageEntries} the Linux zero page holds");
        return merged;
    }

    /// <summary>Cuts [start, end) out of every piece, then adds it with <paramref name="type"/> (null: leave a hole).</summary>
    private static void Overlay(List<E820Entry> pieces, ulong start, ulong end, E820Type? type)
    {
        for (int i = pieces.Count - 1; i >= 0; i--)
        {
            var p = pieces[i];
            if (p.End <= start || p.Address >= end) continue;
            pieces.RemoveAt(i);
            if (p.Address < start) pieces.Add(p with { Size = start - p.Address });
            if (p.End > end) pieces.Add(new E820Entry(end, p.End - end, p.Type));
        }
        if (type is { } t) pieces.Add(new E820Entry(start, end - start, t));
    }
}
