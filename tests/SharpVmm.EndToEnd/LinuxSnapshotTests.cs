using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.EndToEnd;

/// <summary>
/// Linux on emu, snapshotted while its init counts on the console, restored in a new process: the count goes on
/// (no reboot, no gap, no repeat), timers keep working (the loop sleeps), and virtio disk and rng requests made
/// after the restore are served by the restored queues.
/// </summary>
public sealed partial class LinuxSnapshotTests : IDisposable
{
    private const int Count = 40;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-linux-snap-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static string Cmd(string shell) => "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(shell));

    [GeneratedRegex(@"COUNT-(\d+)\n")]
    private static partial Regex CountLine();

    [LinuxGuestFact]
    public async Task Linux_counting_on_the_console_continues_after_restore_in_a_new_process()
    {
        string disk = Path.Combine(_dir, "disk.raw");
        using (var f = File.Create(disk)) f.SetLength(4 << 20);
        string snap = Path.Combine(_dir, "linux.snap");
        string shell =
            "printf SNAPDISK | dd of=/dev/vda bs=512 conv=fsync 2>/dev/null; i=0; " +
            $"while [ $i -lt {Count} ]; do i=$((i+1)); echo COUNT-$i; sleep 0.2; done; " +
            "echo 3 > /proc/sys/vm/drop_caches; echo DISK-$(head -c 8 /dev/vda); echo RNG-$(head -c 16 /dev/hwrng | wc -c); exit 7";
        string[] vmArgs =
        [
            "--accel", "emu", "--memory", "256M", "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd,
            "--append", "console=ttyS0 " + Cmd(shell), "--disk", disk, "--rng",
        ];
        string qmp = Path.Combine(_dir, "qmp.sock");
        string before;
        using (var first = Start([.. vmArgs, "--serial", $"file:{Path.Combine(_dir, "a.txt")}", "--qmp", $"unix:{qmp}"]))
        {
            try
            {
                await using var client = await Connect(qmp, first);
                await WaitFor("a.txt", "COUNT-5\n", first, TimeSpan.FromSeconds(600));
                await client.ExecuteAsync("stop");
                await client.ExecuteAsync("snapshot-save", new JsonObject { ["file"] = snap });
                before = Read("a.txt");
                await client.ExecuteAsync("quit");
                Assert.True(first.WaitForExit(60_000), "the first sharpvmm did not quit");
            }
            finally
            {
                if (!first.HasExited) first.Kill(entireProcessTree: true);
            }
        }

        var restored = SharpVmmProcess.Run(600, ["run", .. vmArgs, "--serial", $"file:{Path.Combine(_dir, "b.txt")}", "--restore", snap]);
        string after = Read("b.txt");
        Assert.True(restored.ExitCode == 0, $"exit {restored.ExitCode}\n{restored.Stderr}\n{after}");
        Assert.Contains("RAM mapped lazily", restored.Stderr);
        Assert.DoesNotContain("Linux version", after);   // no reboot
        Assert.DoesNotContain("COUNT-1\n", after);
        var counts = CountLine().Matches((before + after).Replace("\r", "")).Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(Enumerable.Range(1, Count), counts); // every number once, in order, across the two processes
        Assert.Contains("DISK-SNAPDISK", after);
        Assert.Contains("RNG-16", after);
        Assert.Contains("SHARPVMM-EXIT=7", after);
    }

    private Process Start(string[] runArgs) => SharpVmmProcess.StartRun(_dir, runArgs);

    private static Task<QmpClient> Connect(string socket, Process vm) => SharpVmmProcess.ConnectQmpAsync(socket, vm, 120);

    private async Task WaitFor(string serial, string text, Process vm, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Read(serial).Replace("\r", "").Contains(text))
        {
            if (vm.HasExited) Assert.Fail($"sharpvmm exited with {vm.ExitCode} before the guest printed '{text.Trim()}':\n{Read(serial)}");
            if (DateTime.UtcNow > deadline) Assert.Fail($"the guest did not print '{text.Trim()}' within {timeout.TotalSeconds} s:\n{Read(serial)}");
            await Task.Delay(100);
        }
    }

    private string Read(string name)
    {
        string p = Path.Combine(_dir, name);
        if (!File.Exists(p)) return "";
        using var f = new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(f).ReadToEnd();
    }
}
