namespace SharpVmm.Memory.Tests;

public sealed unsafe class GuestMemoryTests
{
    [Fact]
    public void Small_RAM_is_one_region_from_zero()
    {
        using var m = GuestMemory.Create(256UL << 20);
        Assert.Single(m.Regions);
        Assert.Equal(0UL, m.Regions[0].GuestBase);
        Assert.Equal(256UL << 20, m.TotalSize);
    }

    [Fact]
    public void RAM_larger_than_3GiB_is_split_around_the_32bit_MMIO_hole()
    {
        // MAP_NORESERVE: 5 GiB of address space costs nothing until touched.
        using var m = GuestMemory.Create(5UL << 30);
        Assert.Equal(2, m.Regions.Count);
        Assert.Equal(MemoryLayout.MmioHoleStart, m.Regions[0].Size);
        Assert.Equal(MemoryLayout.FourGiB, m.Regions[1].GuestBase);
        Assert.Equal((5UL << 30) - MemoryLayout.MmioHoleStart, m.Regions[1].Size);
        Assert.False(m.IsRam(0xFEE0_0000));
        Assert.True(m.IsRam(MemoryLayout.FourGiB + 0x1000));
        m.Write(MemoryLayout.FourGiB + 8, 0xDEAD_BEEFu);
        Assert.Equal(0xDEAD_BEEFu, m.Read<uint>(MemoryLayout.FourGiB + 8));
    }

    [Fact]
    public void Reads_and_writes_round_trip_and_cross_adjacent_regions()
    {
        using var m = GuestMemory.Create([(0, 0x1000), (0x1000, 0x1000)]);
        var data = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        m.Write(0xFF0, data);
        var back = new byte[32];
        m.Read(0xFF0, back);
        Assert.Equal(data, back);
    }

    [Theory]
    [InlineData(0x2000UL, 1)]      // in the hole
    [InlineData(0x1FFFUL, 2)]      // runs from RAM into the hole
    [InlineData(0x5000UL, 1)]      // past the end
    [InlineData(ulong.MaxValue, 1)]
    public void Accesses_outside_RAM_throw_and_never_touch_host_memory(ulong gpa, int length)
    {
        using var m = GuestMemory.Create([(0, 0x2000), (0x4000, 0x1000)]);
        var buf = new byte[length];
        Assert.Throws<GuestMemoryException>(() => m.Read(gpa, buf));
        Assert.Throws<GuestMemoryException>(() => m.Write(gpa, buf));
        Assert.Throws<GuestMemoryException>(() => m.GetReadOnlySpan(gpa, length).ToArray());
        Assert.False(m.TryGetHostPointer(gpa, (ulong)length, out _));
    }

    [Fact]
    public void Malformed_ranges_are_refused()
    {
        Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([(0, 0x1001)]));
        Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([(0x1000, 0x1000), (0, 0x1000)]));
        Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([(0, 0x2000), (0x1000, 0x1000)]));
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestMemory.Create(0));
    }

    [Fact]
    public void Writes_mark_pages_dirty_only_while_tracking_is_enabled()
    {
        using var m = GuestMemory.Create([(0, 0x10000)]);
        var dirty = m.Regions[0].Dirty;
        m.Write(0x3000, [1]);
        Assert.False(dirty.IsDirty(3));
        dirty.Enabled = true;
        m.Write(0x3FFF, [1, 2]); // spans pages 3 and 4
        m.GetWritableSpan(0x9000, 1)[0] = 7;
        Assert.True(dirty.IsDirty(3));
        Assert.True(dirty.IsDirty(4));
        Assert.True(dirty.IsDirty(9));
        Assert.False(dirty.IsDirty(5));
        var words = new ulong[dirty.WordCount];
        dirty.Harvest(words);
        Assert.Equal((1UL << 3) | (1UL << 4) | (1UL << 9), words[0]);
        Assert.False(dirty.IsDirty(3));
    }

    [Fact]
    public void Host_pointer_is_given_only_for_ranges_inside_one_region()
    {
        using var m = GuestMemory.Create([(0, 0x2000)]);
        Assert.True(m.TryGetHostPointer(0x1000, 0x1000, out byte* p));
        *p = 0x77;
        Assert.Equal(0x77, m.Read<byte>(0x1000));
        Assert.False(m.TryGetHostPointer(0x1000, 0x1001, out _));
    }

    [Fact]
    public void Disposed_memory_refuses_access()
    {
        var m = GuestMemory.Create([(0, 0x1000)]);
        m.Dispose();
        Assert.Throws<ObjectDisposedException>(() => m.Read<byte>(0));
    }

    [Fact]
    public void Merge_option_registers_RAM_with_KSM_where_the_kernel_has_it_and_fails_clearly_where_not()
    {
        // madvise(MADV_MERGEABLE) fails with EINVAL on kernels built without KSM: that must be an error, not silence.
        var options = new GuestMemoryOptions { Merge = true };
        if (Directory.Exists("/sys/kernel/mm/ksm"))
        {
            using var m = GuestMemory.Create(16UL << 20, options);
            Assert.True(m.Options.Merge);
        }
        else
        {
            var ex = Assert.Throws<GuestMemoryException>(() => GuestMemory.Create(16UL << 20, options));
            Assert.Contains("KSM", ex.Message);
        }
    }
}
