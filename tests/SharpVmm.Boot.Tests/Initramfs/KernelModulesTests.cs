using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Boot.Tests.Initramfs;

public sealed class KernelModulesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-modules-").FullName;

    public KernelModulesTests()
    {
        Module("kernel/drivers/virtio/virtio_ring.ko", "virtio_ring", "");
        Module("kernel/drivers/virtio/virtio.ko", "virtio", "virtio_ring");
        Module("kernel/drivers/virtio/virtio_mmio.ko", "virtio_mmio", "virtio,virtio_ring");
        Module("kernel/drivers/char/hw_random/virtio-rng.ko", "virtio_rng", "virtio_ring,virtio");
        Module("kernel/net/core/failover.ko", "failover", "");
        Module("kernel/drivers/net/net_failover.ko", "net_failover", "failover");
        Module("kernel/drivers/net/virtio_net.ko", "virtio_net", "net_failover,virtio,virtio_ring");
        File.WriteAllText(Path.Combine(_dir, "modules.builtin"), "kernel/fs/ext4/ext4.ko\nkernel/lib/crc-t10dif.ko\n");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void Module(string relativePath, string name, string depends)
    {
        string path = Path.Combine(_dir, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, SyntheticElf.Module("license=GPL", $"depends={depends}", "intree=Y", $"name={name}"));
    }

    private static List<string> Names(IEnumerable<KernelModule> modules) => modules.Select(m => m.Name).ToList();

    [Fact]
    public void Dash_and_underscore_name_the_same_module()
    {
        var resolved = KernelModules.Resolve(_dir, ["virtio-rng"]);
        Assert.Equal(["virtio_ring", "virtio", "virtio_rng"], Names(resolved));
        Assert.Equal("kernel/drivers/char/hw_random/virtio-rng.ko", resolved[2].RelativePath);
        Assert.Equal(["virtio_ring", "virtio"], resolved[2].Depends);
        Assert.Equal(Names(resolved), Names(KernelModules.Resolve(_dir, ["virtio_rng"])));
    }

    [Fact]
    public void Closure_lists_each_module_once_after_its_dependencies()
    {
        var resolved = KernelModules.Resolve(_dir, ["virtio_net", "virtio_mmio", "virtio-rng", "virtio_net.ko", " virtio "]);
        Assert.Equal(["failover", "net_failover", "virtio_ring", "virtio", "virtio_net", "virtio_mmio", "virtio_rng"], Names(resolved));
        for (int i = 0; i < resolved.Count; i++)
        {
            foreach (var dep in resolved[i].Depends)
                Assert.True(Names(resolved).IndexOf(dep) < i, $"{dep} must load before {resolved[i].Name}");
        }
    }

    [Fact]
    public void Built_in_modules_are_skipped()
    {
        Assert.Empty(KernelModules.Resolve(_dir, ["ext4", "crc_t10dif"]));
    }

    [Fact]
    public void Modules_dep_lists_all_dependencies_each_before_its_own_dependencies()
    {
        var resolved = KernelModules.Resolve(_dir, ["virtio_net"]);
        string expected =
            "kernel/net/core/failover.ko:\n" +
            "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n" +
            "kernel/drivers/virtio/virtio_ring.ko:\n" +
            "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n" +
            "kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n";
        Assert.Equal(expected, KernelModules.ModulesDep(resolved));
    }

    [Fact]
    public void Modules_dep_refuses_an_incomplete_list()
    {
        var resolved = KernelModules.Resolve(_dir, ["virtio"]);
        Assert.Throws<InitramfsException>(() => KernelModules.ModulesDep([resolved[1]]));
    }

    [Fact]
    public void Unknown_module_names_the_module()
    {
        var ex = Assert.Throws<InitramfsException>(() => KernelModules.Resolve(_dir, ["virtio_blk"]));
        Assert.Contains("'virtio_blk' (requested)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_dependency_names_who_needs_it()
    {
        Module("kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko", "vmw_vsock_virtio_transport", "vsock,virtio");
        var ex = Assert.Throws<InitramfsException>(() => KernelModules.Resolve(_dir, ["vmw_vsock_virtio_transport"]));
        Assert.Contains("'vsock' (needed by 'vmw_vsock_virtio_transport')", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dependency_cycle_is_reported()
    {
        Module("kernel/x/a.ko", "a", "b");
        Module("kernel/x/b.ko", "b", "c");
        Module("kernel/x/c.ko", "c", "a");
        var ex = Assert.Throws<InitramfsException>(() => KernelModules.Resolve(_dir, ["a"]));
        Assert.Contains("a -> b -> c -> a", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_whose_modinfo_names_another_module_is_reported()
    {
        Module("kernel/x/liar.ko", "honest", "");
        Assert.Contains("calls itself 'honest'", Assert.Throws<InitramfsException>(() => KernelModules.Resolve(_dir, ["liar"])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Corrupt_module_file_is_reported_with_its_path()
    {
        string path = Path.Combine(_dir, "kernel/x/broken.ko");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, SyntheticElf.Module("name=broken")[..100]);
        var ex = Assert.Throws<InitramfsException>(() => KernelModules.Resolve(_dir, ["broken"]));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_modules_directory_says_to_fetch_the_guest()
    {
        var ex = Assert.Throws<InitramfsException>(() => KernelModules.Resolve(Path.Combine(_dir, "nope"), ["virtio"]));
        Assert.Contains("fetch.sh", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Same_module_name_in_two_files_is_ambiguous()
    {
        Module("kernel/other/virtio.ko", "virtio", "");
        Assert.Contains("exists twice", Assert.Throws<InitramfsException>(() => KernelModules.Resolve(_dir, ["virtio"])).Message, StringComparison.Ordinal);
    }
}
