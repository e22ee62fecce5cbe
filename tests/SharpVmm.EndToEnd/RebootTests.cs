using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.EndToEnd;

/// <summary>A Linux guest's <c>reboot -f</c> on emu: QEMU's answers, a reset by default and exit 0 under --no-reboot.</summary>
public sealed class RebootTests
{
    internal const int TimeoutSeconds = 1500; // two Linux boots on our CPU, on a loaded machine

    internal static string[] RunArgs(string command, params string[] extra) =>
    [
        "run", "--accel", "emu", "--memory", "256M", "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd,
        "--append", "console=ttyS0 " + GuestInitScript.CommandLineWord(command), .. extra,
    ];

    private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

    [LinuxGuestFact]
    public void Reboot_under_no_reboot_ends_the_run_with_exit_code_0()
    {
        var r = SharpVmmProcess.Run(TimeoutSeconds, RunArgs("echo REBOOTING; reboot -f; echo STILL-HERE", "--no-reboot"));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stderr}\n{r.Stdout}");
        Assert.Equal(1, Count(r.Stdout, GuestInitScript.MarkerInitOk));
        Assert.Contains("REBOOTING", r.Stdout);
        Assert.Contains("reboot: Restarting system", r.Stdout);
        Assert.DoesNotContain("STILL-HERE", r.Stdout);
        Assert.DoesNotContain("SHARPVMM-EXIT", r.Stdout); // the guest did not carry on to its own power-off
        Assert.DoesNotContain("triple", r.Stderr);
    }
}

public sealed class RebootResetTests
{
    [LinuxGuestFact]
    public void Reboot_resets_the_VM_and_the_guest_boots_again()
    {
        // Every boot runs the same command, so the guest reboots until the test has seen a second boot.
        var psi = SharpVmmProcess.StartInfo(RebootTests.RunArgs("echo REBOOTING; reboot -f"));
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = new StringBuilder();
        var secondBoot = new TaskCompletionSource();
        int boots = 0;
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stdout) stdout.Append(e.Data).Append('\n');
            if (e.Data.Contains(GuestInitScript.MarkerInitOk, StringComparison.Ordinal) && Interlocked.Increment(ref boots) == 2)
                secondBoot.TrySetResult();
        };
        var stderr = p.StandardError.ReadToEndAsync();
        p.BeginOutputReadLine();
        bool booted = secondBoot.Task.Wait(TimeSpan.FromSeconds(RebootTests.TimeoutSeconds));
        if (!p.HasExited) Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60))) p.Kill(entireProcessTree: true);
        p.WaitForExit();
        string output;
        lock (stdout) output = stdout.ToString();
        Assert.True(booted, $"no second boot; exit {(p.HasExited ? p.ExitCode : -1)}\n{stderr.Result}\n{output}");
        // A host stop (SIGTERM) after the second boot: a clean exit, and the first boot really restarted.
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}\n{stderr.Result}");
        int restart = output.IndexOf("reboot: Restarting system", StringComparison.Ordinal);
        Assert.True(restart > 0, output);
        Assert.Contains(GuestInitScript.MarkerInitOk, output[restart..]);
        Assert.Contains("Linux version", output[restart..]); // the kernel started from the top
        Assert.DoesNotContain("triple", stderr.Result);
    }
}
