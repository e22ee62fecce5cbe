using SharpVmm.Memory;

namespace SharpVmm.Boot.Tests;

public class E820Tests
{
    private const ulong MiB = 1 << 20, GiB = 1 << 30;

    [Fact]
    public void Small_RAM_gives_low_RAM_EBDA_BIOS_area_and_high_RAM()
    {
        using var m = GuestMemory.Create(128 * MiB);
        Assert.Equal(
            [
                new E820Entry(0, 0x9FC00, E820Type.Ram),
                new E820Entry(0x9FC00, 0x400, E820Type.Reserved),
                new E820Entry(0xE0000, 0x20000, E820Type.Reserved),
                new E820Entry(0x100000, 127 * MiB, E820Type.Ram),
            ],
            E820.Build(m));
    }

    [Fact]
    public void RAM_beyond_the_MMIO_hole_is_listed_above_4_GiB_and_the_hole_is_not()
    {
        using var m = GuestMemory.Create(4 * GiB);
        var map = E820.Build(m);
        Assert.Equal(new E820Entry(0x100000, MemoryLayout.MmioHoleStart - 0x100000, E820Type.Ram), map[3]);
        Assert.Equal(new E820Entry(MemoryLayout.FourGiB, GiB, E820Type.Ram), map[4]);
        Assert.Equal(5, map.Count);
        Assert.DoesNotContain(map, e => e.Address < MemoryLayout.FourGiB && e.End > MemoryLayout.MmioHoleStart);
    }

    [Fact]
    public void An_ACPI_table_range_in_RAM_is_cut_out_as_ACPI()
    {
        using var m = GuestMemory.Create(64 * MiB);
        var map = E820.Build(m, 32 * MiB, 0x2000);
        Assert.Contains(new E820Entry(0x100000, 31 * MiB, E820Type.Ram), map);
        Assert.Contains(new E820Entry(32 * MiB, 0x2000, E820Type.Acpi), map);
        Assert.Contains(new E820Entry(32 * MiB + 0x2000, 32 * MiB - 0x2000, E820Type.Ram), map);
    }

    [Fact]
    public void ACPI_tables_in_the_BIOS_area_split_the_reserved_range()
    {
        using var m = GuestMemory.Create(64 * MiB);
        var map = E820.Build(m, 0xE0000, 0x1000);
        Assert.Contains(new E820Entry(0xE0000, 0x1000, E820Type.Acpi), map);
        Assert.Contains(new E820Entry(0xE1000, 0x1F000, E820Type.Reserved), map);
    }

    [Fact]
    public void The_ACPI_range_is_rounded_out_to_whole_pages()
    {
        using var m = GuestMemory.Create(64 * MiB);
        var map = E820.Build(m, 32 * MiB + 0x10, 0x245);
        Assert.Contains(new E820Entry(32 * MiB, 0x1000, E820Type.Acpi), map);
        Assert.Contains(new E820Entry(32 * MiB + 0x1000, 32 * MiB - 0x1000, E820Type.Ram), map);
    }

    [Fact]
    public void Entries_are_sorted_and_disjoint()
    {
        using var m = GuestMemory.Create(5 * GiB);
        var map = E820.Build(m, 0xE0000, 0x800);
        for (int i = 1; i < map.Count; i++) Assert.True(map[i - 1].End <= map[i].Address);
    }
}
