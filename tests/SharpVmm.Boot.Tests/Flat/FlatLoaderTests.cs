using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;
using static SharpVmm.Boot.Tests.GuestInspection;

namespace SharpVmm.Boot.Tests.Flat;

public sealed class FlatLoaderTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.Create(64 * MiB);

    public void Dispose() => _memory.Dispose();

    private static byte[] Assemble(int bitness, ulong ip)
    {
        var a = new Assembler(bitness);
        a.mov(AssemblerRegisters.al, 0x42);
        a.@out(0xF4, AssemblerRegisters.al);
        a.hlt();
        return GuestCode.Assemble(a, ip);
    }

    private byte[] ReadBack(ulong gpa, int length)
    {
        var b = new byte[length];
        _memory.Read(gpa, b);
        return b;
    }

    [Fact]
    public void Real_mode_entry_splits_the_address_into_CS_and_IP()
    {
        var code = Assemble(16, 0);
        var s = FlatLoader.Load(_memory, code, 0x1000, EntryMode.Real);

        Assert.Equal(code, ReadBack(0x1000, code.Length));
        Assert.Equal((ushort)0x100, s.Cs.Selector);
        Assert.Equal(0x1000UL, s.Cs.Base);
        Assert.Equal(0xFFFFu, s.Cs.Limit);
        Assert.Equal(0xB, s.Cs.Type);
        Assert.Equal(0UL, s.Rip);
        Assert.Equal(s.Cs.Selector, s.Ds.Selector);
        Assert.Equal(s.Cs.Base, s.Es.Base);
        Assert.Equal(0x3, s.Ds.Type);
        Assert.Equal(FlatLoader.RealModeStackSegment, s.Ss.Selector);
        Assert.Equal(LowMemoryLayout.StackTop, s.Ss.Base + s[Gpr.Rsp]);
        Assert.Equal(0UL, s.Cr0 & ControlBits.Cr0Pe);
        Assert.Equal(0UL, s.Efer);
        Assert.Equal(0x3FF, s.Idt.Limit);
        Assert.Equal(0x2UL, s.Rflags);
    }

    [Fact]
    public void Real_mode_keeps_the_low_nibble_in_IP()
    {
        var s = FlatLoader.Load(_memory, [0xF4], 0x7C05, EntryMode.Real);
        Assert.Equal((ushort)0x7C0, s.Cs.Selector);
        Assert.Equal(5UL, s.Rip);
        Assert.Equal(0x7C05UL, s.Cs.Base + s.Rip);
    }

    [Fact]
    public void Protected_mode_entry_uses_flat_32_bit_segments_without_paging()
    {
        var code = Assemble(32, 0x10_0000);
        var s = FlatLoader.Load(_memory, code, 0x10_0000, EntryMode.Protected);

        Assert.Equal(code, ReadBack(0x10_0000, code.Length));
        Assert.Equal(0x10_0000UL, s.Rip);
        Assert.Equal(LowMemoryLayout.StackTop, s[Gpr.Rsp]);
        Assert.Equal(ControlBits.Cr0Pe | ControlBits.Cr0Et, s.Cr0);
        Assert.Equal(0UL, s.Cr4);
        Assert.Equal(0UL, s.Efer);
        Assert.Equal((ushort)0x10, s.Cs.Selector);
        Assert.True(s.Cs.Db && s.Cs.G && !s.Cs.L);
        Assert.Equal(0xFFFF_FFFFu, s.Cs.Limit);
        Assert.Equal((ushort)0x18, s.Ss.Selector);
        Assert.True(s.Ss.Db);
        Assert.Equal(0x00CF_9B00_0000_FFFFUL, U64(_memory, LowMemoryLayout.Gdt + 0x10));
        Assert.Equal(LowMemoryLayout.Gdt, s.Gdt.Base);
    }

    [Fact]
    public void Long_mode_entry_pages_guest_RAM_identically()
    {
        var code = Assemble(64, 0x1000);
        var s = FlatLoader.Load(_memory, code, 0x1000, EntryMode.Long);

        Assert.Equal(code, ReadBack(0x1000, code.Length));
        Assert.Equal(0x1000UL, s.Rip);
        Assert.Equal(LowMemoryLayout.StackTop, s[Gpr.Rsp]);
        Assert.Equal(ControlBits.Cr0Pe | ControlBits.Cr0Et | ControlBits.Cr0Pg, s.Cr0);
        Assert.Equal(ControlBits.Cr4Pae, s.Cr4);
        Assert.Equal(ControlBits.EferLme | ControlBits.EferLma, s.Efer);
        Assert.True(s.Cs.L && !s.Cs.Db);
        Assert.Equal(0x1000UL, Translate(_memory, s.Cr3, 0x1000));
        Assert.Equal(LowMemoryLayout.StackTop - 8, Translate(_memory, s.Cr3, LowMemoryLayout.StackTop - 8));
        Assert.Equal(64 * MiB - 1, Translate(_memory, s.Cr3, 64 * MiB - 1));
        Assert.Equal(0xFEC0_0000UL, Translate(_memory, s.Cr3, 0xFEC0_0000));
    }

    [Theory]
    [InlineData(EntryMode.Real, 0x7_FFFF, 2)]
    [InlineData(EntryMode.Protected, 0x8_0000, 1)]
    [InlineData(EntryMode.Long, 0x9_0000, 16)]
    [InlineData(EntryMode.Long, 0x1000, 0x80_000)]
    public void A_binary_overlapping_the_loader_area_is_refused(EntryMode mode, ulong address, int length)
    {
        var e = Assert.Throws<BootException>(() => FlatLoader.Load(_memory, new byte[length], address, mode));
        Assert.Contains("loader's area", e.Message);
    }

    [Fact]
    public void A_binary_ending_just_below_the_loader_area_is_fine()
    {
        FlatLoader.Load(_memory, new byte[0x1000], 0x7_F000, EntryMode.Long);
        FlatLoader.Load(_memory, new byte[0x1000], 0xA_0000 + 0x4_0000, EntryMode.Protected);
    }

    [Fact]
    public void A_real_mode_binary_above_1_MiB_is_refused()
    {
        Assert.Contains("below 1 MiB", Assert.Throws<BootException>(() => FlatLoader.Load(_memory, [0xF4], 0x10_0000, EntryMode.Real)).Message);
    }

    [Fact]
    public void A_binary_outside_RAM_is_refused()
    {
        var e = Assert.Throws<BootException>(() => FlatLoader.Load(_memory, new byte[0x2000], 64 * MiB - 0x1000, EntryMode.Protected));
        Assert.Contains("guest RAM", e.Message);
        Assert.Throws<BootException>(() => FlatLoader.Load(_memory, [0xF4], 0xC000_0000, EntryMode.Long));
    }

    [Fact]
    public void A_protected_mode_binary_past_4_GiB_is_refused()
    {
        using var big = GuestMemory.Create([(0, 0x100000), (0xFFFF_0000, 0x2_0000)]);
        Assert.Contains("4 GiB", Assert.Throws<BootException>(() => FlatLoader.Load(big, new byte[0x2_0000], 0xFFFF_0000, EntryMode.Protected)).Message);
    }

    [Fact]
    public void Random_placements_either_load_or_are_refused_cleanly()
    {
        var rng = new Random(7);
        var image = new byte[0x3000];
        int loaded = 0;
        for (int i = 0; i < 2000; i++)
        {
            ulong address = rng.Next(3) switch
            {
                0 => (ulong)rng.Next(0, 0x20_0000),
                1 => (ulong)rng.NextInt64(0, 1L << 33),
                _ => ulong.MaxValue - (ulong)rng.Next(0, 0x4000),
            };
            int length = rng.Next(1, image.Length);
            var mode = (EntryMode)rng.Next(3);
            try
            {
                var s = FlatLoader.Load(_memory, image.AsSpan(0, length), address, mode);
                loaded++;
                Assert.True(address + (ulong)length <= 64 * MiB);
                Assert.True(address + (ulong)length <= LowMemoryLayout.LoaderAreaStart || address >= LowMemoryLayout.LoaderAreaEnd);
                Assert.Equal(address, mode == EntryMode.Real ? s.Cs.Base + s.Rip : s.Rip);
            }
            catch (BootException)
            {
            }
        }
        Assert.True(loaded > 100, $"only {loaded} placements loaded");
    }

    [Fact]
    public void An_empty_binary_is_refused()
    {
        Assert.Throws<BootException>(() => FlatLoader.Load(_memory, [], 0x1000, EntryMode.Real));
    }

    [Fact]
    public void Tiny_RAM_without_the_loader_area_is_refused()
    {
        using var tiny = GuestMemory.Create(0x8_0000);
        Assert.Contains("640 KiB", Assert.Throws<BootException>(() => FlatLoader.Load(tiny, [0xF4], 0x1000, EntryMode.Real)).Message);
    }
}
