using SharpVmm.Block;
using SharpVmm.Core;
using SharpVmm.Boot.Initramfs;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

/// <summary>Issue #16: one image file attached twice to a VM would be written by two caches; the image lock refuses it.</summary>
public sealed class DiskLockTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-disklock-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Kernel()
    {
        string kernel = Path.Combine(GuestInitramfs.DefaultGuestDir, "vmlinuz");
        if (!File.Exists(kernel)) Assert.Fail($"no guest kernel in {GuestInitramfs.DefaultGuestDir}: run guest/setup.sh");
        return kernel;
    }

    [Fact]
    public void The_same_file_attached_twice_for_writing_is_refused_in_one_line()
    {
        string disk = Path.Combine(_dir, "d.qcow2");
        ImageFactory.Create(disk, "qcow2", 1 << 20).Dispose();
        File.CreateSymbolicLink(Path.Combine(_dir, "alias.qcow2"), disk);
        var e = Assert.Throws<ConfigurationException>(() => VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 128UL << 20,
            Kernel = Kernel(),
            Serial = "none",
            Disks = [new DiskSpec(disk, "qcow2"), new DiskSpec(Path.Combine(_dir, "alias.qcow2"), "qcow2")],
        }).Dispose());
        Assert.Contains("in use", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        // The first open was released: the image is usable again.
        ImageFactory.Open(disk).Dispose();
    }

    [Fact]
    public void The_same_file_attached_twice_read_only_is_allowed_as_in_QEMU()
    {
        string disk = Path.Combine(_dir, "d.raw");
        ImageFactory.Create(disk, "raw", 1 << 20).Dispose();
        using var vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 128UL << 20,
            Kernel = Kernel(),
            Serial = "none",
            Disks = [new DiskSpec(disk, "raw", ReadOnly: true), new DiskSpec(disk, "raw", ReadOnly: true)],
        });
        Assert.Throws<ImageLockedException>(() => ImageFactory.Open(disk));
    }
}
