using SharpVmm.Boot.Initramfs;

namespace SharpVmm.EndToEnd;

/// <summary>The Debian guest's pvpanic driver (pvpanic-mmio, found through ACPI QEMU0001) reports a kernel panic to the VMM.</summary>
public sealed class PvPanicTests
{
    [LinuxGuestFact]
    public void A_panic_the_console_does_not_show_is_reported_through_pvpanic_and_ends_the_run()
    {
        // loglevel=0 keeps the panic banner off the console (the console watcher sees nothing) and panic=-1 would
        // reboot the guest at once: only the pvpanic port can tell the VMM.
        var r = SharpVmmProcess.Run(RebootTests.TimeoutSeconds, "run", "--accel", "emu", "--memory", "256M",
            "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd, "--device", "pvpanic",
            "--append", "console=ttyS0 loglevel=0 panic=-1 " + GuestInitScript.CommandLineWord("echo SHARPVMM-PANICKING; echo c > /proc/sysrq-trigger"));
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}\n{r.Stderr}\n{r.Stdout}");
        Assert.Contains("SHARPVMM-PANICKING", r.Stdout);
        Assert.DoesNotContain("Kernel panic", r.Stdout);
        Assert.Contains("reported through pvpanic", r.Stderr);
        Assert.Equal(1, r.Stdout.Split(GuestInitScript.MarkerInitOk).Length - 1); // no reboot
    }
}
