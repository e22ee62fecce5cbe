using SharpVmm.Boot.Flat;
using SharpVmm.Core;
using SharpVmm.Devices.Virtio.Balloon;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

public sealed class MemoryConfigTests
{
    [Theory]
    [InlineData("256M", true, false, false)]
    [InlineData("256M,merge=off", false, false, false)]
    [InlineData("1G,merge=on,hugepages=on", true, true, false)]
    [InlineData("64M,prealloc=on,merge=off,hugepages=off", false, false, true)]
    public void Memory_options_parse_with_merge_on_by_default(string text, bool merge, bool huge, bool prealloc)
    {
        var spec = MemorySpec.Parse(text);
        Assert.Equal(SizeParser.Parse(text.Split(',')[0]), spec.Bytes);
        Assert.Equal((merge, huge, prealloc), (spec.Options.Merge, spec.Options.HugePages, spec.Options.Prealloc));
        Assert.True(new VmConfig().MemoryOptions.Merge);
    }

    [Theory]
    [InlineData("256M,merge")]
    [InlineData("256M,merge=yes")]
    [InlineData("256M,ksm=on")]
    [InlineData("256M,merge=on,merge=off")]
    [InlineData(",merge=on")]
    [InlineData("256M,")]
    public void Bad_memory_options_are_clear_errors(string text)
        => Assert.StartsWith("--memory", Assert.Throws<ConfigurationException>(() => MemorySpec.Parse(text)).Message);

    [Fact]
    public void The_balloon_needs_a_kernel_and_counts_as_a_virtio_device()
    {
        string bin = Path.GetTempFileName();
        try
        {
            var flat = new VmConfig { Flat = new FlatImageSpec(bin, 0x1000, EntryMode.Real), Balloon = true };
            Assert.Contains("--kernel", Assert.Throws<ConfigurationException>(flat.Validate).Message);
            var many = new VmConfig
            {
                Kernel = bin,
                Rng = true,
                Balloon = true,
                Disks = [.. Enumerable.Range(0, Core.Platform.PcLayout.VirtioMmioSlots - 1).Select(_ => new DiskSpec(bin))],
            };
            Assert.Contains("at most", Assert.Throws<ConfigurationException>(many.Validate).Message);
        }
        finally
        {
            File.Delete(bin);
        }
    }

    [Fact]
    public void The_builder_registers_the_balloon_and_backs_ram_as_configured()
    {
        string guest = Path.Combine(SharpVmm.Boot.Initramfs.GuestInitramfs.DefaultGuestDir, "vmlinuz");
        if (!File.Exists(guest)) return; // the Linux kernel is what makes the builder add virtio devices
        using var vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            Kernel = guest,
            MemoryBytes = 128UL << 20,
            MemoryOptions = new() { Merge = false, Prealloc = true },
            Balloon = true,
            Serial = "none",
        });
        var balloon = Assert.IsType<VirtioBalloon>(vm.Devices.Find(VmBuilder.BalloonId));
        Assert.Equal(128UL << 20, balloon.GuestRamBytes);
        Assert.NotNull(vm.Devices.Find(VmBuilder.BalloonId + ".transport"));
        Assert.False(vm.Memory.Options.Merge);
        Assert.True(vm.Memory.ResidentBytes() >= 120UL << 20); // prealloc=on backed it up front
    }
}
