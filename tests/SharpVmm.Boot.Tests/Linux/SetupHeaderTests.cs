using SharpVmm.Boot.Linux;

namespace SharpVmm.Boot.Tests.Linux;

public class SetupHeaderTests
{
    [Fact]
    public void Parses_the_fields_of_a_valid_header()
    {
        var image = new SyntheticBzImage { SetupSects = 7, PayloadSize = 0x2345 }.Build();
        var h = SetupHeader.Parse(image);
        Assert.Equal(0x020F, h.Version);
        Assert.Equal("2.15", h.VersionText);
        Assert.Equal(8 * 512, h.SetupSize);
        Assert.Equal(0x234u, h.SysSize);
        Assert.True(h.Relocatable);
        Assert.Equal(0x20_0000u, h.KernelAlignment);
        Assert.Equal(0x100_0000UL, h.PrefAddress);
        Assert.Equal(0x40_0000u, h.InitSize);
        Assert.Equal(0x7FFF_FFFFu, h.InitrdAddrMax);
        Assert.Equal(0x7FFu, h.CmdlineSize);
        Assert.Equal(0x26C, h.End);
    }

    [Fact]
    public void Setup_sects_zero_means_four()
    {
        var image = new SyntheticBzImage { SetupSects = 0 }.Build();
        Assert.Equal(5 * 512, SetupHeader.Parse(image).SetupSize);
    }

    [Fact]
    public void Random_bytes_are_not_a_bzImage()
    {
        var image = new byte[64 * 1024];
        new Random(1).NextBytes(image);
        var e = Assert.Throws<BootException>(() => SetupHeader.Parse(image));
        Assert.Contains("not a Linux bzImage", e.Message);
    }

    [Fact]
    public void A_boot_sector_without_HdrS_is_not_a_bzImage()
    {
        var image = new SyntheticBzImage().Build();
        image[SetupHeader.MagicOffset] = (byte)'X';
        Assert.Contains("HdrS", Assert.Throws<BootException>(() => SetupHeader.Parse(image)).Message);
    }

    [Fact]
    public void An_ELF_vmlinux_is_named_as_such()
    {
        var image = new byte[4096];
        "\x7F"u8.CopyTo(image);
        "ELF"u8.CopyTo(image.AsSpan(1));
        Assert.Contains("ELF", Assert.Throws<BootException>(() => SetupHeader.Parse(image)).Message);
    }

    [Fact]
    public void Gzip_data_is_named_as_such()
    {
        var image = new byte[4096];
        image[0] = 0x1F;
        image[1] = 0x8B;
        Assert.Contains("gzip", Assert.Throws<BootException>(() => SetupHeader.Parse(image)).Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(0x205)]
    public void A_tiny_file_is_too_short(int length)
    {
        Assert.Throws<BootException>(() => SetupHeader.Parse(new byte[length]));
    }

    [Fact]
    public void A_file_cut_short_is_truncated()
    {
        var full = new SyntheticBzImage { PayloadSize = 0x10000 }.Build();
        var cut = full.AsSpan(0, full.Length - 4096).ToArray();
        var e = Assert.Throws<BootException>(() => SetupHeader.Parse(cut));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void A_file_cut_inside_the_setup_code_is_truncated()
    {
        var full = new SyntheticBzImage { SetupSects = 30 }.Build();
        var cut = full.AsSpan(0, 0x1000).ToArray();
        Assert.Contains("truncated", Assert.Throws<BootException>(() => SetupHeader.Parse(cut)).Message);
    }

    [Fact]
    public void A_syssize_beyond_the_file_is_truncated()
    {
        var image = new SyntheticBzImage { PayloadSize = 0x1000, SysSize = 0x200 }.Build();
        Assert.Contains("truncated", Assert.Throws<BootException>(() => SetupHeader.Parse(image)).Message);
    }

    [Theory]
    [InlineData(0x0206)]
    [InlineData(0x020B)]
    public void A_protocol_older_than_2_12_is_refused(int version)
    {
        var image = new SyntheticBzImage { Version = (ushort)version }.Build();
        var e = Assert.Throws<BootException>(() => SetupHeader.Parse(image));
        Assert.Contains("2.12", e.Message);
        Assert.Contains($"2.{version & 0xFF:D2}", e.Message);
    }

    [Fact]
    public void Protocol_2_12_is_accepted()
    {
        Assert.Equal(0x020C, SetupHeader.Parse(new SyntheticBzImage { Version = 0x020C }.Build()).Version);
    }

    [Fact]
    public void A_kernel_without_the_64_bit_entry_is_refused()
    {
        var image = new SyntheticBzImage { XLoadFlags = 0x7E }.Build();
        Assert.Contains("XLF_KERNEL_64", Assert.Throws<BootException>(() => SetupHeader.Parse(image)).Message);
    }

    [Fact]
    public void A_zImage_is_refused()
    {
        var image = new SyntheticBzImage { LoadFlags = 0 }.Build();
        Assert.Contains("zImage", Assert.Throws<BootException>(() => SetupHeader.Parse(image)).Message);
    }

    [Fact]
    public void A_relocatable_kernel_with_a_bad_alignment_is_refused()
    {
        var image = new SyntheticBzImage { KernelAlignment = 0x30_0000 }.Build();
        Assert.Contains("kernel_alignment", Assert.Throws<BootException>(() => SetupHeader.Parse(image)).Message);
    }

    [LinuxGuestFact]
    public void The_Debian_cloud_kernel_header_is_a_64_bit_relocatable_bzImage()
    {
        var image = File.ReadAllBytes(GuestFiles.KernelIfPresent!);
        var h = SetupHeader.Parse(image);
        Assert.True(h.Version >= SetupHeader.MinimumVersion);
        Assert.NotEqual(0, h.XLoadFlags & SetupHeader.XlfKernel64);
        Assert.True(h.Relocatable);
        Assert.Equal(0x20_0000u, h.KernelAlignment);
        Assert.Equal(0x100_0000UL, h.PrefAddress);
        Assert.True(h.InitSize > (uint)(image.Length - h.SetupSize), "init_size covers at least the compressed kernel");
        Assert.True(h.CmdlineSize >= 255);
        Assert.True(h.SetupSize + (long)h.SysSize * 16 <= image.Length);
    }
}
