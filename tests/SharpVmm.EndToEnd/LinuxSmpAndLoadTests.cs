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

    private static string[] Boot(int cpus, string append, string accel = "emu") =>
        ["run", "--accel", accel, "--cpus", cpus.ToString(), "--memory", "256M",
         "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd, "--append", append];

    private static string Lines(string s) => s.Replace("\r", "");

    [LinuxGuestTheory]
    [InlineData(2)]
    [InlineData(4)]
    public void Every_cpu_comes_online_through_init_sipi_in_x2apic_mode_with_timer_and_ipi_interrupts(int cpus)
    {
        var r = SharpVmmProcess.Run(600, Boot(cpus, "console=ttyS0 " + Cmd(
            "echo NPROC=$(nproc); echo ONLINE=$(cat /sys/devices/system/cpu/online); grep -E '^ *(LOC|RES|CAL):' /proc/interrupts")));
        string output = Lines(r.Stdout);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stderr}\n{output}");
        Assert.Contains($"SHARPVMM-INIT-OK kernel=", output);
        Assert.Contains($"\nNPROC={cpus}\n", output);
        Assert.Contains($"\nONLINE=0-{cpus - 1}\n", output);
        Assert.Contains($"smp: Brought up 1 node, {cpus} CPUs", output);
        AssertX2ApicInUse(output);
        // Every CPU took its own local APIC timer interrupts, and the CPUs sent each other IPIs (rescheduling and
        // function calls: x2APIC ICR writes with physical destinations) that arrived.
        foreach (long n in Counts(output, "LOC", cpus)) Assert.True(n > 0, $"a CPU had no local timer interrupt\n{output}");
        long ipis = 0;
        foreach (long n in Counts(output, "RES", cpus)) ipis += n;
        foreach (long n in Counts(output, "CAL", cpus)) ipis += n;
        Assert.True(ipis > 0, $"no IPI arrived\n{output}");
        Assert.Contains("SHARPVMM-EXIT=0", output);
        Assert.Contains("reboot: Power down", output);
    }

    /// <summary>
    /// The kernel's own words for x2APIC mode: it switched the APIC to x2APIC (CPUID shows a hypervisor, so it may
    /// without interrupt remapping) and routes interrupts in physical destination mode.
    /// </summary>
    internal static void AssertX2ApicInUse(string output)
    {
        Assert.Contains("Hypervisor detected: KVM", output);
        Assert.Contains("x2apic enabled", output);
        Assert.Matches("APIC routing to physical x2apic", output);
        Assert.DoesNotContain("IRQ remapping doesn't support X2APIC mode", output);
        Assert.DoesNotContain("unchecked MSR access error", output);
    }

    /// <summary>The per-CPU counts of a /proc/interrupts row such as "LOC:  812  790  Local timer interrupts".</summary>
    private static long[] Counts(string output, string row, int cpus)
    {
        string line = output.Split('\n').First(l => l.TrimStart().StartsWith(row + ":", StringComparison.Ordinal));
        string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var counts = new long[cpus];
        for (int i = 0; i < cpus; i++) counts[i] = long.Parse(fields[1 + i], System.Globalization.CultureInfo.InvariantCulture);
        return counts;
    }

    [LinuxGuestFact]
    public void Three_guests_started_together_all_reach_init_and_power_off()
    {
        // GUEST.md: under this load QEMU TCG guests lose the PIT-based TSC calibration and hang. Ours are told the
        // TSC rate, so every one must make it. The third shows a bare-metal CPUID (hypervisor=off): Linux then keeps
        // the APIC in xAPIC mode, as it must without interrupt remapping.
        var runs = Enumerable.Range(1, 3)
            .Select(i => Task.Run(() => SharpVmmProcess.Run(900, Boot(1, "console=ttyS0 " + Cmd($"echo GUEST={i}; exit {i}"), i == 3 ? "emu,hypervisor=off" : "emu"))))
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
            if (i == 3)
            {
                Assert.Contains("x2apic: IRQ remapping doesn't support X2APIC mode", output);
                Assert.DoesNotContain("x2apic enabled", output);
                Assert.DoesNotContain("Hypervisor detected", output);
            }
            else
            {
                AssertX2ApicInUse(output);
            }
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

