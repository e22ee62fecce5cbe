using SharpVmm.Memory;
using static SharpVmm.Boot.Tests.GuestInspection;

namespace SharpVmm.Boot.Tests;

public class PageTablesTests
{
    private const ulong GiB = 1 << 30;

    [Fact]
    public void Small_RAM_still_gets_the_first_4_GiB_mapped()
    {
        using var m = GuestMemory.Create(64 * MiB);
        Assert.Equal(4 * GiB, PageTables.CoverageFor(m));
    }

    [Fact]
    public void RAM_above_4_GiB_extends_the_map_up_to_the_cap()
    {
        using var six = GuestMemory.Create(6 * GiB);       // 3 GiB low + 3 GiB from 4 GiB: top at 7 GiB
        Assert.Equal(7 * GiB, PageTables.CoverageFor(six));
        using var huge = GuestMemory.Create([(0, 1 << 20), (40 * GiB, 1 << 20)]);
        Assert.Equal(16 * GiB, PageTables.CoverageFor(huge));
    }

    [Fact]
    public void Maps_every_2_MiB_page_to_itself()
    {
        using var m = GuestMemory.Create(64 * MiB);
        ulong cr3 = PageTables.Write(m, 4 * GiB);
        Assert.Equal(LowMemoryLayout.Pml4, cr3);
        foreach (ulong va in new ulong[] { 0, 0x1234, 0x10_0200, 0x3FFF_FFFF, 0x4000_0000, 0xBFFF_FFF0, 0xFEE0_0030, 0xFFFF_FFFF })
            Assert.Equal(va, Translate(m, cr3, va));
        Assert.Null(Translate(m, cr3, 4 * GiB));
        Assert.Null(Translate(m, cr3, 1UL << 39));
    }

    [Fact]
    public void Entries_are_present_writable_and_2_MiB_leaves()
    {
        using var m = GuestMemory.Create(64 * MiB);
        PageTables.Write(m, 4 * GiB);
        Assert.Equal(LowMemoryLayout.Pdpt | 3, m.Read<ulong>(LowMemoryLayout.Pml4));
        Assert.Equal(0UL, m.Read<ulong>(LowMemoryLayout.Pml4 + 8));
        for (int d = 0; d < 4; d++)
            Assert.Equal((LowMemoryLayout.PageDirectories + (ulong)d * 4096) | 3, m.Read<ulong>(LowMemoryLayout.Pdpt + (ulong)d * 8));
        Assert.Equal(0UL, m.Read<ulong>(LowMemoryLayout.Pdpt + 4 * 8));
        Assert.Equal(0x83UL, m.Read<ulong>(LowMemoryLayout.PageDirectories));
        Assert.Equal((3 * GiB + 511 * (2UL << 20)) | 0x83, m.Read<ulong>(LowMemoryLayout.PageDirectories + 3 * 4096 + 511 * 8));
    }

    [Fact]
    public void Tables_stay_inside_the_loader_area()
    {
        ulong end = LowMemoryLayout.PageDirectories + (ulong)LowMemoryLayout.MaxPageDirectories * 4096;
        Assert.True(LowMemoryLayout.Pml4 >= LowMemoryLayout.LoaderAreaStart);
        Assert.True(end <= LowMemoryLayout.ZeroPage);
        Assert.True(LowMemoryLayout.CommandLine + LowMemoryLayout.CommandLineMax <= LowMemoryLayout.StackBottom);
        Assert.True(LowMemoryLayout.StackTop <= LowMemoryLayout.EbdaStart);
    }

    [Fact]
    public void More_than_the_cap_is_refused()
    {
        using var m = GuestMemory.Create(64 * MiB);
        Assert.Throws<BootException>(() => PageTables.Write(m, 17 * GiB));
    }
}
