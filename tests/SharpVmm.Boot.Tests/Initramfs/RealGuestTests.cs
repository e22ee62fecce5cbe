using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Boot.Tests.Initramfs;

/// <summary>Checks against the guest fetched by guest/fetch.sh (skipped when it is not there).</summary>
public class RealGuestTests
{
    private static string GuestDir => TestEnvironment.GuestDir!;

    [NeedsFact(Need.GuestPackages)]
    public void Resolves_the_real_virtio_modules_in_dependency_order()
    {
        var resolved = KernelModules.Resolve(Path.Combine(GuestDir, "modules"), GuestInitramfs.DefaultModules);
        var names = resolved.Select(m => m.Name).ToList();
        Assert.Equal(
            new[] { "virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net",
                "virtio_console", "virtio_rng", "virtio_balloon", "vsock", "vmw_vsock_virtio_transport_common",
                "vmw_vsock_virtio_transport", "button", "evdev", "pvpanic", "pvpanic_mmio" }.Order(),
            names.Order());
        for (int i = 0; i < resolved.Count; i++)
        {
            foreach (var dep in resolved[i].Depends)
                Assert.True(names.IndexOf(dep) < i, $"{dep} must load before {resolved[i].Name}");
        }
        Assert.Equal("kernel/drivers/char/hw_random/virtio-rng.ko", resolved.Single(m => m.Name == "virtio_rng").RelativePath);
        Assert.Equal(["failover"], resolved.Single(m => m.Name == "net_failover").Depends);
    }

    [NeedsFact(Need.GuestPackages)]
    public void Virtio_mmio_is_found_through_acpi()
    {
        string path = Path.Combine(GuestDir, "modules", "kernel", "drivers", "virtio", "virtio_mmio.ko");
        var info = ElfModInfoReader.Read(path);
        Assert.Equal("virtio_mmio", info.Name);
        Assert.Contains("acpi*:LNRO0005:*", info.GetAll("alias"));
        Assert.Equal(File.ReadAllText(Path.Combine(GuestDir, "kernel-version")).Trim(), info.Get("vermagic")?.Split(' ')[0]);
    }

    [NeedsFact(Need.GuestPackages)]
    public void Guest_initramfs_holds_busybox_init_devices_and_modules()
    {
        var builder = GuestInitramfs.Create(GuestDir, command: "echo hello");
        var cpio = new MemoryStream();
        builder.Build(cpio, InitramfsCompression.None);
        var entries = CpioTestReader.Read(cpio.ToArray()).ToDictionary(e => e.Name);
        string version = File.ReadAllText(Path.Combine(GuestDir, "kernel-version")).Trim();

        Assert.Equal(GuestInitScript.Text, entries["init"].Text);
        Assert.Equal(0x81EDu, entries["init"].Mode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(GuestDir, "busybox")), entries["bin/busybox"].Data);
        Assert.Equal("busybox", entries["bin/sh"].Text);
        Assert.Equal((0x2180u, 5u, 1u), (entries["dev/console"].Mode, entries["dev/console"].RdevMajor, entries["dev/console"].RdevMinor));
        Assert.Equal((0x21B6u, 1u, 3u), (entries["dev/null"].Mode, entries["dev/null"].RdevMajor, entries["dev/null"].RdevMinor));
        Assert.Equal("echo hello", entries["etc/sharpvmm/cmd"].Text);

        var loadOrder = entries["etc/sharpvmm/modules"].Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(17, loadOrder.Length);
        Assert.Equal("kernel/drivers/virtio/virtio_ring.ko", loadOrder[0]);
        foreach (var m in loadOrder)
            Assert.True(entries.ContainsKey($"lib/modules/{version}/{m}"), m);
        var dep = entries[$"lib/modules/{version}/modules.dep"].Text;
        Assert.Contains("kernel/drivers/net/virtio_net.ko: ", dep, StringComparison.Ordinal);
        Assert.Equal(17, dep.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [NeedsFact(Need.GuestPackages)]
    public void Init_script_is_valid_busybox_sh()
    {
        string script = Path.Combine(Directory.CreateTempSubdirectory("sharpvmm-init-").FullName, "init");
        try
        {
            File.WriteAllText(script, GuestInitScript.Text);
            var (code, output) = TestEnvironment.Run(Path.Combine(GuestDir, "busybox"), ["sh", "-n", script]);
            Assert.True(code == 0, output);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(script)!, recursive: true);
        }
    }

    [Fact]
    public void Missing_guest_dir_says_to_run_fetch()
    {
        var ex = Assert.Throws<InitramfsException>(() => GuestInitramfs.Create(Path.Combine(Path.GetTempPath(), "sharpvmm-no-such-guest")));
        Assert.Contains("guest/fetch.sh", ex.Message, StringComparison.Ordinal);
    }
}

public class GuestInitScriptTests
{
    [Fact]
    public void Built_in_init_is_the_repository_guest_init()
    {
        string? repo = TestEnvironment.RepoRoot;
        Assert.NotNull(repo);
        Assert.Equal(GuestInitScript.Text, File.ReadAllText(Path.Combine(repo, "guest", "init")));
    }

    [Fact]
    public void Command_word_is_base64_of_the_utf8_command()
    {
        string word = GuestInitScript.CommandLineWord("echo \"a  b\" 'é'; exit 3");
        Assert.StartsWith("sharpvmm.cmd=", word, StringComparison.Ordinal);
        Assert.DoesNotContain(' ', word);
        Assert.Equal("echo \"a  b\" 'é'; exit 3", System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(word["sharpvmm.cmd=".Length..])));
    }

    [Fact]
    public void Recommended_command_line()
    {
        Assert.Equal("console=ttyS0 panic=-1 tsc_early_khz=2445432 tsc=reliable quiet",
            GuestKernelCommandLine.Recommended(2445432, " quiet "));
        Assert.Equal("console=ttyS0 panic=-1 tsc=reliable", GuestKernelCommandLine.Recommended(null));
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestKernelCommandLine.Recommended(0));
    }
}
