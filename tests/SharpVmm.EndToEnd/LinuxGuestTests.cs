using System.Text;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.EndToEnd;

/// <summary>The Debian cloud kernel and busybox initramfs, unmodified, on our own x86-64 CPU.</summary>
public sealed class LinuxGuestTests : IDisposable
{
    public static string Kernel => Path.Combine(GuestInitramfs.DefaultGuestDir, "vmlinuz");
    public static string Initrd => Path.Combine(GuestInitramfs.DefaultGuestDir, "initrd.gz");
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-linux-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Cmd(string shell) => "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(shell));

    [LinuxGuestFact]
    public void Debian_kernel_boots_on_emu_to_init_runs_a_command_and_powers_off()
    {
        var r = SharpVmmProcess.Run(600, "run", "--accel", "emu", "--memory", "256M", "--kernel", Kernel, "--initrd", Initrd,
            "--append", "console=ttyS0 " + Cmd("uname -s; nproc; grep -m1 '^flags' /proc/cpuinfo; exit 3"));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stderr}\n{r.Stdout}");
        Assert.Contains("SHARPVMM-INIT-OK", r.Stdout);
        Assert.Contains("\nLinux\n", r.Stdout.Replace("\r", ""));
        Assert.Contains("SHARPVMM-EXIT=3", r.Stdout);
        // Our CPU model: long mode, SSE2, no AVX.
        string flags = r.Stdout.Split('\n').First(l => l.StartsWith("flags", StringComparison.Ordinal));
        Assert.Contains(" lm ", flags + " ");
        Assert.Contains(" sse2 ", flags + " ");
        Assert.DoesNotContain(" avx", flags);
        // Issue 15's features, in the kernel's own names; PKU is on (OSPKE: the kernel set CR4.PKE), and so is
        // x2APIC: without interrupt remapping Linux uses it only on a hypervisor it recognises, and CPUID says KVM.
        foreach (string f in new[] { "smep", "smap", "umip", "pcid", "invpcid", "x2apic", "tsc_deadline_timer", "xsave", "xsaveopt", "rdpid", "clflushopt", "clwb", "pku", "ospke", "hypervisor" })
            Assert.Contains(" " + f + " ", flags + " ");
        LinuxSmpAndLoadTests.AssertX2ApicInUse(r.Stdout);
        Assert.Contains("reboot: Power down", r.Stdout);
    }

    [Theory]
    [InlineData("random")]
    [InlineData("truncated")]
    [InlineData("empty")]
    public void A_kernel_that_cannot_boot_is_refused_before_any_vcpu_starts(string kind)
    {
        string path = Path.Combine(_dir, "vmlinuz");
        byte[] bytes = kind switch
        {
            "random" => RandomBytes(1 << 20),
            "truncated" when File.Exists(Kernel) => File.ReadAllBytes(Kernel)[..(64 * 1024)],
            "truncated" => RandomBytes(4096),
            _ => [],
        };
        File.WriteAllBytes(path, bytes);
        var r = SharpVmmProcess.Run(60, "run", "--accel", "emu", "--kernel", path);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout); // the guest printed nothing: no vCPU ran
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("sharpvmm: ", r.Stderr);
    }

    [Fact]
    public void Run_with_nothing_to_boot_and_no_default_guest_says_how_to_get_one()
    {
        var r = SharpVmmProcess.RunWithEnvironment(60, new() { ["SHARPVMM_GUEST_DIR"] = _dir }, "run");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("guest/setup.sh", r.Stderr);
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        new Random(1234).NextBytes(b);
        return b;
    }
}

/// <summary>Debian's own virtio drivers against our virtio-mmio devices, on the emulator.</summary>
public sealed class LinuxVirtioTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-virtio-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [LinuxGuestFact]
    public void A_qemu_img_disk_and_the_rng_work_in_the_guest_and_the_image_stays_clean()
    {
        if (!Tools.Exists("qemu-img") || !Tools.Exists("qemu-io"))
            Assert.Fail("qemu-img/qemu-io missing: scripts/setup.sh installs qemu-utils");
        string disk = Path.Combine(_dir, "disk.qcow2");
        Tools.Run("qemu-img", "create", "-f", "qcow2", disk, "64M");
        string cmd = "cat /sys/block/vda/size; head -c 8 /dev/hwrng | od -An -tx1 | tr -d ' \\n'; echo; "
            + "echo sharpvmm-was-here | dd of=/dev/vda bs=512 seek=100 conv=sync 2>/dev/null; sync; "
            + "dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -c 17; echo";
        var r = SharpVmmProcess.Run(600, "run", "--accel", "emu", "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd,
            "--disk", $"{disk},format=qcow2", "--rng",
            "--append", "console=ttyS0 quiet sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(cmd)));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stderr}\n{r.Stdout}");
        var lines = r.Stdout.Replace("\r", "").Split('\n');
        int at = Array.FindIndex(lines, l => l.StartsWith("SHARPVMM-INIT-OK", StringComparison.Ordinal));
        Assert.True(at >= 0, r.Stdout);
        Assert.Equal("131072", lines[at + 1]);                    // 64 MiB in 512-byte sectors
        Assert.Matches("^[0-9a-f]{16}$", lines[at + 2]);            // 8 bytes from /dev/hwrng
        Assert.NotEqual("0000000000000000", lines[at + 2]);
        Assert.Equal("sharpvmm-was-here", lines[at + 3]);
        Assert.Contains("SHARPVMM-EXIT=0", r.Stdout);
        // The guest's write went through qcow2 allocation: the image checks clean and qemu reads the bytes.
        Assert.Contains("No errors were found", Tools.Run("qemu-img", "check", disk));
        // 's' at the sector start, the newline after the text, and dd's zero padding to the end of the sector.
        string io = Tools.Run("qemu-io", "-c", "read -P 0x73 51200 1", "-c", "read -P 0x0a 51217 1", "-c", "read -P 0 51218 494", disk);
        Assert.DoesNotContain("verification failed", io);
        Assert.Equal(3, io.Split("bytes at offset").Length - 1);
    }
}

/// <summary>Host tools the end-to-end tests use as oracles; what they print, both streams together.</summary>
internal static class Tools
{
    public static bool Exists(string name) => HostTools.Exists(name);

    public static string Run(string file, params string[] args) => ExternalTool.Run(HostTools.Find(file) ?? file, args).Output;
}
