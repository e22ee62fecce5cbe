using SharpVmm.Boot.Initramfs;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

/// <summary>The kernel is read from its file at start and at each reset, not kept in the VMM's memory.</summary>
public sealed class BootFileTests : IDisposable
{
    private const ulong KernelAddress = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-bootfile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Reset_reloads_the_kernel_from_its_file_and_refuses_one_changed_in_place()
    {
        string real = Path.Combine(GuestInitramfs.DefaultGuestDir, "vmlinuz");
        Assert.True(File.Exists(real), $"the guest kernel is missing: run guest/setup.sh ({real})");
        string kernel = Path.Combine(_dir, "vmlinuz");
        File.Copy(real, kernel);
        using var vm = VmBuilder.Build(new VmConfig { Accelerator = AcceleratorKind.Emu, Kernel = kernel, MemoryBytes = 128UL << 20, Serial = "none" });
        var loaded = new byte[64 << 10];
        vm.Memory.Read(KernelAddress, loaded);
        Assert.Contains(loaded, b => b != 0);

        vm.Start();
        vm.Pause();
        vm.Memory.Write(KernelAddress, new byte[loaded.Length]);
        vm.Reset();
        Assert.Equal(loaded, ReadKernel(vm, loaded.Length));

        // Replaced by rename (how package managers update a kernel): the VM keeps booting the file it started with.
        string fresh = Path.Combine(_dir, "vmlinuz.new");
        File.WriteAllBytes(fresh, new byte[4096]);
        File.Move(fresh, kernel, overwrite: true);
        vm.Memory.Write(KernelAddress, new byte[loaded.Length]);
        vm.Reset();
        Assert.Equal(loaded, ReadKernel(vm, loaded.Length));

        // Changed in place: half old, half new would be garbage, so the reset says why it cannot boot.
        string other = Path.Combine(_dir, "vmlinuz2");
        File.Copy(real, other);
        using var vm2 = VmBuilder.Build(new VmConfig { Accelerator = AcceleratorKind.Emu, Kernel = other, MemoryBytes = 128UL << 20, Serial = "none" });
        vm2.Start();
        vm2.Pause();
        using (var f = new FileStream(other, FileMode.Append)) f.WriteByte(0);
        var ex = Assert.Throws<IOException>(vm2.Reset);
        Assert.Contains("modified after the VM started", ex.Message, StringComparison.Ordinal);
    }

    private static byte[] ReadKernel(VirtualMachine vm, int length)
    {
        var now = new byte[length];
        vm.Memory.Read(KernelAddress, now);
        return now;
    }
}
