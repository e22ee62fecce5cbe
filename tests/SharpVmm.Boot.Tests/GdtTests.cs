using SharpVmm.Memory;

namespace SharpVmm.Boot.Tests;

public class GdtTests
{
    [Fact]
    public void Descriptors_match_the_well_known_flat_encodings()
    {
        var longGdt = Gdt.Entries(longMode: true);
        Assert.Equal(0UL, longGdt[0]);
        Assert.Equal(0x00AF_9B00_0000_FFFFUL, longGdt[2]);   // 64-bit code, __BOOT_CS
        Assert.Equal(0x00CF_9300_0000_FFFFUL, longGdt[3]);   // flat data, __BOOT_DS
        Assert.Equal(0x0000_8B00_0000_0067UL, longGdt[4]);   // busy TSS, 104 bytes at 0
        Assert.Equal(0UL, longGdt[5]);                       // its upper half
        Assert.Equal(0x00CF_9B00_0000_FFFFUL, Gdt.Entries(longMode: false)[2]); // 32-bit code
    }

    [Fact]
    public void Descriptor_packs_base_and_limit_bits()
    {
        Assert.Equal(0x12CF_9A34_5678_FFFFUL, Gdt.Descriptor(0x1234_5678, 0xF_FFFF, 0x9A, 0xC));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gdt.Descriptor(0, 0x10_0000, 0x9A, 0));
    }

    [Fact]
    public void Decode_expands_the_limit_and_splits_the_flags()
    {
        var cs = Gdt.Decode(0x10, 0x00AF_9B00_0000_FFFFUL);
        Assert.Equal((ushort)0x10, cs.Selector);
        Assert.Equal(0xFFFF_FFFFu, cs.Limit);
        Assert.Equal(0UL, cs.Base);
        Assert.Equal(0xB, cs.Type);
        Assert.True(cs.S && cs.Present && cs.L && cs.G);
        Assert.False(cs.Db);
        Assert.Equal(0, cs.Dpl);

        var odd = Gdt.Decode(0x28, Gdt.Descriptor(0xAB12_3456, 0x1234, 0xF2, 0x4));
        Assert.Equal(0xAB12_3456UL, odd.Base);
        Assert.Equal(0x1234u, odd.Limit);
        Assert.Equal(3, odd.Dpl);
        Assert.True(odd.Db);
        Assert.False(odd.G);
    }

    [Fact]
    public void Write_puts_the_table_in_guest_memory_and_returns_the_GDTR()
    {
        using var m = GuestMemory.Create(1 << 20);
        var gdtr = Gdt.Write(m, longMode: true);
        Assert.Equal(LowMemoryLayout.Gdt, gdtr.Base);
        Assert.Equal(6 * 8 - 1, gdtr.Limit);
        var entries = Gdt.Entries(longMode: true);
        for (int i = 0; i < entries.Length; i++)
            Assert.Equal(entries[i], m.Read<ulong>(LowMemoryLayout.Gdt + (ulong)i * 8));
    }
}
