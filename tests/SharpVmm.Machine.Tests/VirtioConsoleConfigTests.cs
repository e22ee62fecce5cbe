using SharpVmm.Boot.Initramfs;
using SharpVmm.Core;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Console;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

/// <summary><c>--console</c>: a virtio-console on a character backend, checked when the config is and when the VM is built.</summary>
public sealed class VirtioConsoleConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-vcon-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Kernel()
    {
        string real = Path.Combine(GuestInitramfs.DefaultGuestDir, "vmlinuz");
        if (File.Exists(real)) return real;
        string fake = Path.Combine(_dir, "vmlinuz"); // Validate only checks that the file exists
        File.WriteAllBytes(fake, [0]);
        return fake;
    }

    [Fact]
    public void Console_needs_a_kernel_counts_as_a_virtio_device_and_cannot_share_stdio_with_the_serial_port()
    {
        string kernel = Kernel();
        new VmConfig { Kernel = kernel, Console = "file:" + Path.Combine(_dir, "c.txt") }.Validate();
        new VmConfig { Kernel = kernel, Console = "stdio", Serial = "none" }.Validate();
        var e = Assert.Throws<ConfigurationException>(() => new VmConfig { Kernel = kernel, Console = "stdio" }.Validate());
        Assert.Contains("--serial", e.Message);
        string flat = Path.Combine(_dir, "flat.bin");
        File.WriteAllBytes(flat, [0xF4]);
        e = Assert.Throws<ConfigurationException>(() => new VmConfig
        {
            Flat = new FlatImageSpec(flat, 0x1000, Boot.Flat.EntryMode.Real),
            Console = "none",
        }.Validate());
        Assert.Contains("--console", e.Message);
        string disk = Path.Combine(_dir, "d.raw");
        File.WriteAllBytes(disk, new byte[4096]);
        e = Assert.Throws<ConfigurationException>(() => new VmConfig
        {
            Kernel = kernel,
            Disks = [.. Enumerable.Range(0, SharpVmm.Core.Platform.PcLayout.VirtioMmioSlots).Select(_ => new DiskSpec(disk, "raw", false))],
            Console = "none",
        }.Validate());
        Assert.Contains("at most", e.Message);
    }

    [Fact]
    public void The_builder_adds_a_virtio_console_device_and_refuses_an_unknown_backend()
    {
        string kernel = Path.Combine(GuestInitramfs.DefaultGuestDir, "vmlinuz");
        if (!File.Exists(kernel)) Assert.Fail($"no guest kernel in {GuestInitramfs.DefaultGuestDir}: run guest/setup.sh");
        string output = Path.Combine(_dir, "hvc0.txt");
        using (var vm = VmBuilder.Build(new VmConfig { Accelerator = AcceleratorKind.Emu, Kernel = kernel, Serial = "none", Console = "file:" + output }))
        {
            Assert.IsType<VirtioConsole>(vm.Devices.Find("virtio-console"));
            Assert.Equal(3u, Assert.IsType<VirtioMmioTransport>(vm.Devices.Find("virtio-console.transport")).Device.DeviceId);
        }
        Assert.True(File.Exists(output));
        var e = Assert.Throws<ConfigurationException>(() => VmBuilder.Build(new VmConfig { Accelerator = AcceleratorKind.Emu, Kernel = kernel, Serial = "none", Console = "tcp:1234" }));
        Assert.Contains("--console", e.Message);
        e = Assert.Throws<ConfigurationException>(() => VmBuilder.Build(new VmConfig { Accelerator = AcceleratorKind.Emu, Kernel = kernel, Serial = "none", Console = "file:" + Path.Combine(_dir, "no", "such", "dir", "x") }));
        Assert.StartsWith("--console file:", e.Message);
    }
}
