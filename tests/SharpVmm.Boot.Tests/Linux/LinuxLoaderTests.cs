using SharpVmm.Boot.Linux;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;
using static SharpVmm.Boot.Tests.GuestInspection;

namespace SharpVmm.Boot.Tests.Linux;

public sealed class LinuxLoaderTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.Create(256 * MiB);

    public void Dispose() => _memory.Dispose();

    private static byte[] Initrd(int size)
    {
        var b = new byte[size];
        for (int i = 0; i < size; i++) b[i] = (byte)(i * 13 + 1);
        return b;
    }

    private byte[] ZeroPageBytes()
    {
        var zp = new byte[ZeroPage.Size];
        _memory.Read(LowMemoryLayout.ZeroPage, zp);
        return zp;
    }

    [Fact]
    public void Writes_the_kernel_at_1_MiB_and_the_setup_header_into_the_zero_page()
    {
        var fixture = new SyntheticBzImage { PayloadSize = 0x5000 };
        var image = fixture.Build();
        LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image, CommandLine = "console=ttyS0" });

        var loaded = new byte[fixture.PayloadSize];
        _memory.Read(0x10_0000, loaded);
        Assert.Equal(image.AsSpan(fixture.SetupSize).ToArray(), loaded);

        var zp = ZeroPageBytes();
        Assert.Equal(0xAA55, U16(zp, 0x1FE));
        Assert.Equal("HdrS"u8.ToArray(), zp.AsSpan(0x202, 4).ToArray());
        Assert.Equal(0x020F, U16(zp, 0x206));
        Assert.Equal(fixture.SetupSects, zp[0x1F1]);
        Assert.Equal(0x20_0000u, U32(zp, 0x230));           // kernel_alignment copied
        Assert.Equal(0x100_0000UL, U64(zp, 0x258));         // pref_address copied
        Assert.Equal(0, zp[ZeroPage.SentinelOffset]);
        Assert.True(zp.AsSpan(0, 0x70).IndexOfAnyExcept((byte)0) < 0, "screen_info and friends stay zero");
    }

    [Fact]
    public void Fills_the_loader_fields()
    {
        LinuxLoader.Load(_memory, new LinuxBootSpec
        {
            Kernel = new SyntheticBzImage().Build(),
            Initrd = Initrd(10_000),
            CommandLine = "console=ttyS0 panic=-1",
            AcpiRsdp = 0xE0000,
        }, out var layout);

        var zp = ZeroPageBytes();
        Assert.Equal(0xFF, zp[0x210]);                                     // type_of_loader
        Assert.Equal(SetupHeader.LoadedHigh | SetupHeader.CanUseHeap, zp[0x211]);
        Assert.Equal(ZeroPage.HeapEndPtr, U16(zp, 0x224));
        Assert.Equal(0x10_0000u, U32(zp, 0x214));                          // code32_start
        Assert.Equal((uint)LowMemoryLayout.CommandLine, U32(zp, 0x228));   // cmd_line_ptr
        Assert.Equal(0u, U32(zp, 0xC8));
        Assert.Equal((uint)layout.InitrdAddress, U32(zp, 0x218));          // ramdisk_image
        Assert.Equal(10_000u, U32(zp, 0x21C));                             // ramdisk_size
        Assert.Equal(0u, U32(zp, 0xC0));
        Assert.Equal(0u, U32(zp, 0xC4));
        Assert.Equal(0xE0000UL, U64(zp, 0x70));                            // acpi_rsdp_addr

        var cmdline = new byte[24];
        _memory.Read(LowMemoryLayout.CommandLine, cmdline);
        Assert.Equal("console=ttyS0 panic=-1\0"u8.ToArray(), cmdline[..23]);
    }

    [Fact]
    public void Places_the_initrd_page_aligned_at_the_top_of_low_RAM_clear_of_the_kernel()
    {
        var initrd = Initrd(3 * 4096 + 123);
        LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = new SyntheticBzImage().Build(), Initrd = initrd }, out var layout);

        Assert.Equal(0UL, layout.InitrdAddress & 0xFFF);
        Assert.True(layout.InitrdAddress + layout.InitrdSize <= 256 * MiB);
        Assert.True(256 * MiB - (layout.InitrdAddress + layout.InitrdSize) < 4096, "as high as alignment allows");
        Assert.True(layout.InitrdAddress >= layout.RunEnd);
        var copy = new byte[initrd.Length];
        _memory.Read(layout.InitrdAddress, copy);
        Assert.Equal(initrd, copy);
    }

    [Fact]
    public void Keeps_the_initrd_below_initrd_addr_max()
    {
        var image = new SyntheticBzImage { InitrdAddrMax = 0x07FF_FFFF }.Build(); // 128 MiB - 1
        LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image, Initrd = Initrd(5000) }, out var layout);
        Assert.True(layout.InitrdAddress + layout.InitrdSize <= 0x0800_0000);
        Assert.True(layout.InitrdAddress >= 0x0800_0000 - 0x2000);
    }

    [Fact]
    public void Keeps_the_initrd_below_ACPI_tables_in_high_RAM()
    {
        ulong acpi = 255 * MiB;
        LinuxLoader.Load(_memory, new LinuxBootSpec
        {
            Kernel = new SyntheticBzImage().Build(), Initrd = Initrd(5000), AcpiTablesBase = acpi, AcpiTablesLength = 0x1000,
        }, out var layout);
        Assert.True(layout.InitrdAddress + layout.InitrdSize <= acpi);
        Assert.Contains(layout.E820, e => e.Type == E820Type.Acpi && e.Address == acpi && e.Size == 0x1000);
    }

    [Fact]
    public void Computes_where_a_relocatable_kernel_runs()
    {
        var layoutOf = (SyntheticBzImage f) =>
        {
            LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = f.Build() }, out var l);
            return l;
        };
        var reloc = layoutOf(new SyntheticBzImage { InitSize = 0x80_0000 });
        Assert.Equal(0x100_0000UL, reloc.RunStart);            // max(align_up(1 MiB, 2 MiB), pref_address 16 MiB)
        Assert.Equal(0x180_0000UL, reloc.RunEnd);
        var lowPref = layoutOf(new SyntheticBzImage { PrefAddress = 0x10_0000, KernelAlignment = 0x40_0000 });
        Assert.Equal(0x40_0000UL, lowPref.RunStart);           // 1 MiB rounded up to the 4 MiB alignment
        var fixedAddress = layoutOf(new SyntheticBzImage { Relocatable = false, PrefAddress = 0x20_0000 });
        Assert.Equal(0x20_0000UL, fixedAddress.RunStart);
    }

    [Fact]
    public void Writes_the_e820_map_into_the_zero_page()
    {
        LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = new SyntheticBzImage().Build() }, out var layout);
        var zp = ZeroPageBytes();
        Assert.Equal(4, zp[0x1E8]);
        Assert.Equal(layout.E820.Count, zp[0x1E8]);
        var expected = new (ulong, ulong, uint)[]
        {
            (0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xE0000, 0x20000, 2), (0x100000, 256 * MiB - 0x100000, 1),
        };
        for (int i = 0; i < expected.Length; i++)
        {
            int o = 0x2D0 + 20 * i;
            Assert.Equal(expected[i], (U64(zp, o), U64(zp, o + 8), U32(zp, o + 16)));
        }
        Assert.True(zp.AsSpan(0x2D0 + 20 * 4, 20).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void Starts_the_vCPU_in_long_mode_at_the_64_bit_entry()
    {
        var s = LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = new SyntheticBzImage().Build() });

        Assert.Equal(0x10_0200UL, s.Rip);
        Assert.Equal(LowMemoryLayout.ZeroPage, s[Gpr.Rsi]);
        Assert.Equal(LowMemoryLayout.StackTop, s[Gpr.Rsp]);
        Assert.Equal(0x2UL, s.Rflags);
        Assert.Equal(0x8000_0011UL, s.Cr0);                    // PG | ET | PE
        Assert.Equal(0x20UL, s.Cr4);                           // PAE
        Assert.Equal(0x500UL, s.Efer);                         // LMA | LME
        Assert.Equal(LowMemoryLayout.Pml4, s.Cr3);

        Assert.Equal(0x10, s.Cs.Selector);
        Assert.True(s.Cs.L);
        Assert.False(s.Cs.Db);
        Assert.Equal(0xB, s.Cs.Type);
        Assert.True(s.Cs.Present && s.Cs.S);
        foreach (var seg in new[] { s.Ds, s.Es, s.Ss, s.Fs, s.Gs })
        {
            Assert.Equal(0x18, seg.Selector);
            Assert.Equal(0x3, seg.Type);
            Assert.Equal(0xFFFF_FFFFu, seg.Limit);
            Assert.Equal(0UL, seg.Base);
        }
        Assert.Equal(0x20, s.Tr.Selector);
        Assert.Equal(0xB, s.Tr.Type);
        Assert.False(s.Tr.S);
        Assert.Equal(LowMemoryLayout.Gdt, s.Gdt.Base);

        // The GDT in memory holds the descriptors the segment caches were made from.
        Assert.Equal(0x00AF_9B00_0000_FFFFUL, U64(_memory, LowMemoryLayout.Gdt + 0x10));
        Assert.Equal(0x00CF_9300_0000_FFFFUL, U64(_memory, LowMemoryLayout.Gdt + 0x18));

        // The entry point and the zero page are reachable through the page tables at their own addresses.
        Assert.Equal(0x10_0200UL, Translate(_memory, s.Cr3, 0x10_0200));
        Assert.Equal(LowMemoryLayout.ZeroPage, Translate(_memory, s.Cr3, LowMemoryLayout.ZeroPage));
        Assert.Equal(0xFFFF_F000UL, Translate(_memory, s.Cr3, 0xFFFF_F000));
    }

    [Fact]
    public void An_initrd_that_does_not_fit_is_refused()
    {
        var e = Assert.Throws<BootException>(() => LinuxLoader.Load(_memory, new LinuxBootSpec
        {
            Kernel = new SyntheticBzImage().Build(),
            Initrd = new byte[250 * MiB],
        }));
        Assert.Contains("initrd", e.Message);
        Assert.Contains("more memory", e.Message);
    }

    [Fact]
    public void An_initrd_that_does_not_fit_below_initrd_addr_max_is_refused()
    {
        // The kernel runs in [16 MiB, 20 MiB); a 32 MiB limit leaves 12 MiB for the initrd, so 8 fit and 13 do not.
        var image = new SyntheticBzImage { InitrdAddrMax = 0x01FF_FFFF }.Build();
        LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image, Initrd = new byte[8 * MiB] });
        Assert.Throws<BootException>(() => LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image, Initrd = new byte[13 * MiB] }));
    }

    [Fact]
    public void RAM_too_small_for_the_kernel_to_decompress_is_refused()
    {
        using var small = GuestMemory.Create(18 * MiB);
        var e = Assert.Throws<BootException>(() => LinuxLoader.Load(small, new LinuxBootSpec { Kernel = new SyntheticBzImage().Build() }));
        Assert.Contains("more memory", e.Message);
    }

    [Fact]
    public void A_command_line_longer_than_cmdline_size_is_refused()
    {
        var image = new SyntheticBzImage { CmdlineSize = 16 }.Build();
        LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image, CommandLine = new string('a', 16) });
        var e = Assert.Throws<BootException>(() => LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image, CommandLine = new string('a', 17) }));
        Assert.Contains("at most 16", e.Message);
    }

    [Theory]
    [InlineData("root=/dev/vda\0init=/x")]
    [InlineData("console=ttyS0 é")]
    [InlineData("a\nb")]
    public void A_command_line_with_unprintable_characters_is_refused(string commandLine)
    {
        Assert.Throws<BootException>(() => LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = new SyntheticBzImage().Build(), CommandLine = commandLine }));
    }

    [Fact]
    public void Errors_leave_nothing_half_written_at_the_kernel_address()
    {
        Assert.Throws<BootException>(() => LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = new SyntheticBzImage().Build(), Initrd = new byte[250 * MiB] }));
        var probe = new byte[16];
        _memory.Read(0x10_0000, probe);
        Assert.All(probe, b => Assert.Equal(0, b));
    }

    [LinuxGuestFact]
    public void Loads_the_Debian_cloud_kernel()
    {
        var image = File.ReadAllBytes(GuestFiles.KernelIfPresent!);
        var initrd = Initrd(1 << 20);
        var s = LinuxLoader.Load(_memory, new LinuxBootSpec
        {
            Kernel = image, Initrd = initrd, CommandLine = "console=ttyS0 panic=-1", AcpiRsdp = 0xE0000,
        }, out var layout);

        var h = layout.Header;
        Assert.Equal(0x10_0200UL, s.Rip);
        Assert.Equal((ulong)(image.Length - h.SetupSize), layout.KernelSize);
        Assert.Equal(0x100_0000UL, layout.RunStart);
        Assert.Equal(0x100_0000UL + h.InitSize, layout.RunEnd);
        Assert.True(layout.InitrdAddress >= layout.RunEnd);

        var zp = ZeroPageBytes();
        Assert.Equal(image.AsSpan(0x1F1, 0x210 - 0x1F1).ToArray(), zp.AsSpan(0x1F1, 0x210 - 0x1F1).ToArray());
        Assert.Equal(image.AsSpan(0x230, h.End - 0x230).ToArray(), zp.AsSpan(0x230, h.End - 0x230).ToArray());
        Assert.Equal(0xFF, zp[0x210]);

        // The 64-bit entry point of a real kernel starts with an instruction, not padding.
        var entry = new byte[16];
        _memory.Read(s.Rip, entry);
        Assert.Equal(image.AsSpan(h.SetupSize + 0x200, 16).ToArray(), entry);
        var decoder = Iced.Intel.Decoder.Create(64, entry, s.Rip);
        var first = decoder.Decode();
        Assert.False(first.IsInvalid);
    }
}
