using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Core;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

public sealed class ConfigTests
{
    [Theory]
    [InlineData("256M", 256UL << 20)]
    [InlineData("256", 256UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("2g", 2UL << 30)]
    [InlineData("512K", 512UL << 10)]
    [InlineData("1T", 1UL << 40)]
    [InlineData("64MiB", 64UL << 20)]
    [InlineData("64MB", 64UL << 20)]
    public void Sizes_parse_as_qemu_users_write_them(string text, ulong bytes) => Assert.Equal(bytes, SizeParser.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("-1M")]
    [InlineData("12X")]
    [InlineData("M")]
    [InlineData("1.5G")]
    [InlineData("99999999999999999999")]
    [InlineData("9999999999999T")]
    public void Bad_sizes_are_clear_errors(string text) => Assert.Throws<ConfigurationException>(() => SizeParser.Parse(text));

    [Theory]
    [InlineData("hello.bin@0x1000", "hello.bin", 0x1000UL)]
    [InlineData("a@b.bin@4096", "a@b.bin", 4096UL)]
    [InlineData("/x/y@0X100000", "/x/y", 0x100000UL)]
    public void Flat_specs_split_at_the_last_at_sign(string text, string path, ulong addr)
    {
        var f = FlatImageSpec.Parse(text, EntryMode.Long);
        Assert.Equal((path, addr, EntryMode.Long), (f.Path, f.Address, f.Mode));
    }

    [Theory]
    [InlineData("hello.bin")]
    [InlineData("hello.bin@")]
    [InlineData("@0x1000")]
    [InlineData("hello.bin@0xZZ")]
    [InlineData("hello.bin@-5")]
    public void Bad_flat_specs_are_clear_errors(string text) => Assert.Throws<ConfigurationException>(() => FlatImageSpec.Parse(text, EntryMode.Real));

    [Fact]
    public void Inconsistent_configs_are_refused_with_the_option_named()
    {
        string file = Path.GetTempFileName();
        try
        {
            var flat = new FlatImageSpec(file, 0x1000, EntryMode.Real);
            Assert.Contains("nothing to boot", Assert.Throws<ConfigurationException>(() => new VmConfig().Validate()).Message);
            Assert.Contains("--cpus", Assert.Throws<ConfigurationException>(() => new VmConfig { Flat = flat, Cpus = 0 }.Validate()).Message);
            Assert.Contains("--cpus", Assert.Throws<ConfigurationException>(() => new VmConfig { Flat = flat, Cpus = 300 }.Validate()).Message);
            Assert.Contains("alternatives", Assert.Throws<ConfigurationException>(() => new VmConfig { Flat = flat, Kernel = file }.Validate()).Message);
            Assert.Contains("--initrd", Assert.Throws<ConfigurationException>(() => new VmConfig { Flat = flat, Initrd = file }.Validate()).Message);
            Assert.Contains("no such file", Assert.Throws<ConfigurationException>(() => new VmConfig { Kernel = "/nonexistent/vmlinuz" }.Validate()).Message);
            Assert.Contains("beyond guest RAM", Assert.Throws<ConfigurationException>(() => new VmConfig { Flat = flat with { Address = 1UL << 40 } }.Validate()).Message);
            new VmConfig { Flat = flat }.Validate();
        }
        finally
        {
            File.Delete(file);
        }
    }
}
