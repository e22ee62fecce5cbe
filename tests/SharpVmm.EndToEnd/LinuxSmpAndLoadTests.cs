using System.Text;
using SharpVmm.Machine.Lifecycle;

namespace SharpVmm.EndToEnd;

/// <summary>
/// The Debian guest on emu beyond one quiet CPU: application processors started by the kernel through INIT/SIPI,
/// several guests competing for the host, and a guest that panics.
/// </summary>
public sealed class LinuxSmpAndLoadTests
{
    private static string Cmd(string shell) => "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(shell));

    private static string[] Boot(int cpus, string append) =>
        ["run", "--accel", "emu", "--cpus", cpus.ToString(), "--memory", "256M",
         "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd, "--append", append];

    private static string Lines(string s) => s.Replace("\r", "");

    [LinuxGuestTheory]
    [InlineData(2)]
    [InlineData(4)]
    public void Every_cpu_comes_online_through_init_sipi(int cpus)
    {
        var r = SharpVmmProcess.Run(600, Boot(cpus, "console=ttyS0 " + Cmd("echo NPROC=$(nproc); echo ONLINE=$(cat /sys/devices/system/cpu/online)")));
        string output = Lines(r.Stdout);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stderr}\n{output}");
        Assert.Contains($"SHARPVMM-INIT-OK kernel=", output);
        Assert.Contains($"\nNPROC={cpus}\n", output);
        Assert.Contains($"\nONLINE=0-{cpus - 1}\n", output);
        Assert.Contains($"smp: Brought up 1 node, {cpus} CPUs", output);
        Assert.Contains("SHARPVMM-EXIT=0", output);
        Assert.Contains("reboot: Power down", output);
    }

    [LinuxGuestFact]
    public void Three_guests_started_together_all_reach_init_and_power_off()
    {
        // GUEST.md: under this load QEMU TCG guests lose the PIT-based TSC calibration and hang. Ours are told the
        // TSC rate, so every one must make it.
        var runs = Enumerable.Range(1, 3)
            .Select(i => Task.Run(() => SharpVmmProcess.Run(900, Boot(1, "console=ttyS0 " + Cmd($"echo GUEST={i}; exit {i}")))))
            .ToArray();
        Task.WaitAll(runs);
        for (int i = 1; i <= 3; i++)
        {
            var r = runs[i - 1].Result;
            string output = Lines(r.Stdout);
            Assert.True(r.ExitCode == 0, $"guest {i}: exit {r.ExitCode}\n{r.Stderr}\n{output}");
            Assert.Contains("SHARPVMM-INIT-OK", output);
            Assert.Contains($"\nGUEST={i}\n", output);
            Assert.Contains($"SHARPVMM-EXIT={i}", output);
            Assert.DoesNotContain("Marking TSC unstable", output);
            Assert.Contains("reboot: Power down", output);
        }
    }

    [LinuxGuestFact]
    public void A_kernel_panic_that_asks_for_a_reboot_ends_the_run_with_the_panic_text()
    {
        var r = SharpVmmProcess.Run(600, Boot(1, "console=ttyS0 panic=-1 " + Cmd("echo c > /proc/sysrq-trigger")));
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}\n{r.Stderr}\n{r.Stdout}");
        Assert.Contains("sharpvmm: the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash", r.Stderr);
        Assert.Contains("SHARPVMM-INIT-OK", r.Stdout);
        // It did not boot again.
        Assert.Single(r.Stdout.Split("Linux version ").Skip(1));
    }

    [Fact]
    public void The_panic_watcher_sees_the_banner_across_writes_and_reports_the_closing_line_once()
    {
        var w = new GuestPanicWatcher(null);
        var ended = new List<string>();
        w.PanicEnded += ended.Add;
        Write(w, "[    1.0] Kernel panic is a phrase, not a panic\r\n");
        Assert.Null(w.PanicLine);
        Write(w, "[   27.149218] Kernel pan");
        Write(w, "ic - not syncing: VFS: Unable to mount root fs\r\n[   27.15] CPU: 0 PID: 1\r\n");
        Assert.Equal("Kernel panic - not syncing: VFS: Unable to mount root fs", w.PanicLine);
        Assert.Empty(ended);
        Write(w, "[   27.2] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---\r\n");
        Assert.Equal(["Kernel panic - not syncing: VFS: Unable to mount root fs"], ended);
        Assert.Equal(3, VmExitResult.GuestPanic(w.PanicLine!).ExitCode);
        Assert.True(VmExitResult.GuestPanic(w.PanicLine!).IsError);
    }

    [Fact]
    public void A_line_longer_than_the_buffer_does_not_overflow_it()
    {
        var w = new GuestPanicWatcher(null);
        Write(w, new string('x', 10_000) + "\n");
        Write(w, "Kernel panic - not syncing: late\n");
        Assert.Equal("Kernel panic - not syncing: late", w.PanicLine);
    }

    private static void Write(GuestPanicWatcher w, string s) => w.Write(Encoding.ASCII.GetBytes(s));
}

