using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace SharpVmm.EndToEnd;

/// <summary>
/// The Debian guest with every block translated at its first execution (<c>jit=forced</c>): boot, SMP bring-up
/// through INIT/SIPI, a little work in user space and poweroff must all come out as with the interpreter, and
/// most instructions must really have run as host code.
/// </summary>
public sealed partial class LinuxTranslatorTests
{
    private static string Cmd(string shell) => "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(shell));

    [GeneratedRegex(@"emu jit: (\d+) instructions, ([0-9.]+)% translated; (\d+) blocks")]
    private static partial Regex StatsLine();

    [LinuxGuestTheory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Linux_boots_and_powers_off_with_every_block_translated(int cpus)
    {
        string shell = "echo NPROC=$(nproc); echo SUM=$(seq 1 2000 | awk '{s+=$1} END {print s}'); echo HASH=$(echo sharpvmm | md5sum)";
        var r = SharpVmmProcess.RunWithEnvironment(900, new Dictionary<string, string> { ["SHARPVMM_JIT_STATS"] = "1" },
            "run", "--accel", "emu,jit=forced", "--cpus", cpus.ToString(CultureInfo.InvariantCulture), "--memory", "256M",
            "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd, "--append", "console=ttyS0 " + Cmd(shell));
        string output = r.Stdout.Replace("\r", "");
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stderr}\n{output}");
        Assert.Contains("SHARPVMM-INIT-OK", output);
        Assert.Contains($"\nNPROC={cpus}\n", output);
        Assert.Contains("\nSUM=2001000\n", output);
        Assert.Contains("\nHASH=13b7420ec779f062568ca4710d18909c -\n", output); // echo collapses md5sum's two spaces
        Assert.Contains("SHARPVMM-EXIT=0", output);
        Assert.Contains("reboot: Power down", output);
        var m = StatsLine().Match(r.Stderr);
        Assert.True(m.Success, $"no translator statistics on stderr:\n{r.Stderr}");
        double share = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.True(long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) > 1000, m.Value);
        Assert.True(share > 50, $"only {share}% of the instructions ran translated: {m.Value}");
    }
}
