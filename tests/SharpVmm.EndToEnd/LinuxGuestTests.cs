using System.Text;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.EndToEnd;

/// <summary>Skips, with the reason, where guest/setup.sh has not prepared the Debian guest (scripts/test.sh does).</summary>
public sealed class LinuxGuestFactAttribute : FactAttribute
{
    public LinuxGuestFactAttribute()
    {
        if (!File.Exists(LinuxGuestTests.Kernel) || !File.Exists(LinuxGuestTests.Initrd))
            Skip = $"no guest kernel/initramfs in {GuestInitramfs.DefaultGuestDir}: run guest/setup.sh";
    }
}

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
