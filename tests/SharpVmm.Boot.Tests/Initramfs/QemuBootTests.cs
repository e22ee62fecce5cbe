using System.Diagnostics;
using System.Globalization;
using System.Text;
using SharpVmm.Boot.Initramfs;
using Xunit.Abstractions;

namespace SharpVmm.Boot.Tests.Initramfs;

/// <summary>End to end: our initramfs, /init and module list boot the Debian kernel under QEMU microvm.</summary>
public sealed class QemuBootTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("sharpvmm-qemu-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [NeedsFact(Need.QemuSystem, Need.GuestPackages)]
    public void Guest_boots_loads_virtio_modules_runs_the_command_and_powers_off()
    {
        string guestDir = TestEnvironment.GuestDir!;
        string initrd = Path.Combine(_temp, "initrd.gz");
        using (var f = File.Create(initrd))
            GuestInitramfs.Create(guestDir).Build(f);

        string disk = Path.Combine(_temp, "disk.raw");
        var diskBytes = new byte[1 << 20];
        "SHARPVMM-DISK-OK"u8.CopyTo(diskBytes);
        File.WriteAllBytes(disk, diskBytes);

        // Quotes, spaces and a non-zero status check the sharpvmm.cmd encoding end to end.
        const string command =
            "test -b /dev/vda && echo \"vda:  $(head -c 16 /dev/vda)\"; " +
            "test -c /dev/hwrng && echo \"rng: $(cat /sys/class/misc/hw_random/rng_current)\"; " +
            "rmmod virtio_balloon && modprobe virtio_balloon && echo 'modprobe ok'; " +
            "exit 7";
        string cmdline = GuestKernelCommandLine.Recommended(HostTscKhz(), GuestInitScript.CommandLineWord(command));

        var sw = Stopwatch.StartNew();
        var (code, output) = TestEnvironment.Run("qemu-system-x86_64",
        [
            "-M", "microvm,acpi=on", "-accel", "tcg", "-m", "256M", "-nographic", "-no-reboot", "-nodefaults",
            "-serial", "stdio", "-kernel", Path.Combine(guestDir, "vmlinuz"), "-initrd", initrd, "-append", cmdline,
            "-drive", $"if=none,id=d0,format=raw,file={disk}", "-device", "virtio-blk-device,drive=d0",
            "-device", "virtio-rng-device",
        ], timeoutMs: 180_000);
        log.WriteLine($"QEMU ran {sw.ElapsedMilliseconds} ms, exit {code}; command line: {cmdline}");
        log.WriteLine(output);

        string version = File.ReadAllText(Path.Combine(guestDir, "kernel-version")).Trim();
        Assert.True(code == 0, $"QEMU exit code {code}");
        Assert.Contains($"{GuestInitScript.MarkerInitOk} kernel={version} cpus=1", output, StringComparison.Ordinal);
        Assert.DoesNotContain(GuestInitScript.MarkerModuleFailed, output, StringComparison.Ordinal);
        Assert.Contains("vda:  SHARPVMM-DISK-OK", output, StringComparison.Ordinal);
        Assert.Contains("rng: virtio_rng.0", output, StringComparison.Ordinal);
        Assert.Contains("modprobe ok", output, StringComparison.Ordinal);
        Assert.Contains(GuestInitScript.MarkerExit + "7", output, StringComparison.Ordinal);
        Assert.Contains("reboot: Power down", output, StringComparison.Ordinal);
    }

    /// <summary>
    /// QEMU TCG's RDTSC counts at the host TSC rate. With an invariant TSC, /proc/cpuinfo's "cpu MHz" is that
    /// rate closely enough (a small error only makes guest time drift, it does not stop the boot).
    /// </summary>
    private static long? HostTscKhz()
    {
        try
        {
            string cpuinfo = File.ReadAllText("/proc/cpuinfo");
            if (!cpuinfo.Contains(" constant_tsc", StringComparison.Ordinal))
                return null;
            foreach (var line in cpuinfo.Split('\n'))
            {
                if (line.StartsWith("cpu MHz", StringComparison.Ordinal) &&
                    double.TryParse(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double mhz) &&
                    mhz > 0)
                    return (long)(mhz * 1000);
            }
        }
        catch (IOException)
        {
        }
        return null;
    }
}
