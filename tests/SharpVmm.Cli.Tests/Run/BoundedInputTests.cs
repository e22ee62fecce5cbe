using System.Diagnostics;
using SharpVmm.Block;

namespace SharpVmm.Cli.Tests.Run;

/// <summary>
/// Issue #16 finding 4/5: careless file arguments (FIFOs, directories, /dev/zero, huge configs, over-long or occupied
/// socket paths) and bad values are one line and exit 2 before anything is opened or read, never a hang or a crash.
/// </summary>
public sealed class BoundedInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-bounded-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Fifo(string name = "fifo")
    {
        string path = Path.Combine(_dir, name);
        var p = Process.Start("/usr/bin/mkfifo", path);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return path;
    }

    private string Regular(string name, int bytes = 16)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, new byte[bytes]);
        return path;
    }

    /// <summary>Runs sharpvmm in this process, failing (instead of hanging the suite) when it does not return within 20 s.</summary>
    private static int Sharpvmm(params string[] args)
    {
        var run = Task.Run(() => Program.Main(args));
        Assert.True(run.Wait(TimeSpan.FromSeconds(20)), $"sharpvmm {string.Join(' ', args)} did not return: it blocked on an input");
        return run.Result;
    }

    [Fact]
    public void Fifos_and_devices_as_file_arguments_exit_2_without_blocking()
    {
        string fifo = Fifo(), kernel = Regular("vmlinuz", 4096), flatBin = Regular("x.bin");
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--kernel", fifo));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--kernel", kernel, "--initrd", fifo));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", fifo + "@0x1000"));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", "/dev/zero@0x1000"));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--kernel", kernel, "--disk", fifo + ",format=raw"));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--kernel", kernel, "--disk", "/dev/zero,format=raw"));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--kernel", kernel, "--disk", _dir));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@0x1000", "--restore", fifo));
        Assert.Equal(2, Sharpvmm("run", "--config", fifo));
        Assert.Equal(2, Sharpvmm("run", "--config", "/dev/zero"));
    }

    [Fact]
    public void A_config_file_over_a_mebibyte_is_refused()
    {
        string big = Path.Combine(_dir, "big.json");
        File.WriteAllText(big, "{\"cpus\": 1" + new string(' ', 2 << 20) + "}");
        Assert.Equal(2, Sharpvmm("run", "--config", big));
    }

    [Fact]
    public void Socket_paths_too_long_or_naming_a_file_exit_2_and_leave_the_file()
    {
        string flatBin = Regular("x.bin");
        string longPath = Path.Combine(_dir, new string('s', 120));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@0x1000", "--serial", "unix:" + longPath));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@0x1000", "--qmp", "unix:" + longPath));
        string notes = Path.Combine(_dir, "notes.txt");
        File.WriteAllText(notes, "keep me");
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@0x1000", "--serial", "unix:" + notes));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@0x1000", "--console", "unix:" + notes));
        Assert.Equal("keep me", File.ReadAllText(notes));
        string empty = Regular("empty", 0);
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@0x1000", "--qmp", "unix:" + empty));
        Assert.True(File.Exists(empty));
    }

    [Fact]
    public void Bad_values_exit_2_as_the_README_states()
    {
        string flatBin = Regular("x.bin");
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@0x1000", "--memory", "lots"));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@nowhere"));
        Assert.Equal(2, Sharpvmm("run", "--accel", "emu", "--flat", flatBin + "@0x1000", "--disk", flatBin + ",format=vmdk"));
    }

    [Fact]
    public void Host_file_kinds_are_told_apart_and_named_in_the_message()
    {
        string fifo = Fifo("f2");
        Assert.Equal(HostFileKind.Fifo, HostFile.KindOf(fifo));
        Assert.Equal(HostFileKind.CharDevice, HostFile.KindOf("/dev/zero"));
        Assert.Equal(HostFileKind.Directory, HostFile.KindOf(_dir));
        Assert.Equal(HostFileKind.Missing, HostFile.KindOf(Path.Combine(_dir, "nope")));
        Assert.Equal($"--kernel '{fifo}' is a FIFO: it must be a regular file", HostFile.Problem(fifo, "--kernel"));
        Assert.Null(HostFile.Problem(Regular("ok"), "--kernel"));
        Assert.Contains("longer than 107 bytes", HostFile.SocketPathProblem(new string('x', 108), "--serial"));
        Assert.Null(HostFile.SocketPathProblem(new string('x', 107), "--serial"));
        // A disk image that is a FIFO is refused by the image layer too (never NotSupportedException or a hang).
        Assert.Contains("is a FIFO", Assert.Throws<BlockImageException>(() => ImageFactory.Open(fifo)).Message);
        Assert.Contains("is a FIFO", Assert.Throws<BlockImageException>(() => ImageFactory.Open(fifo, new ImageOpenOptions { Format = "raw" })).Message);
    }
}

/// <summary>Issue #16: an incoming migration listening beyond loopback says so on stderr.</summary>
public sealed class IncomingExposureTests
{
    [Fact]
    public void Listening_on_every_interface_warns_and_loopback_does_not()
    {
        var all = SharpVmm.Cli.Run.IncomingMigration.ExposureWarning(new System.Net.IPEndPoint(System.Net.IPAddress.Any, 4444));
        Assert.NotNull(all);
        Assert.StartsWith("sharpvmm: warning: ", all);
        Assert.Contains("0.0.0.0:4444", all);
        Assert.DoesNotContain('\n', all);
        Assert.Null(SharpVmm.Cli.Run.IncomingMigration.ExposureWarning(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 4444)));
        Assert.Null(SharpVmm.Cli.Run.IncomingMigration.ExposureWarning(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, 4444)));
    }
}
