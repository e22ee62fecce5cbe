using System.Diagnostics;

namespace SharpVmm.Cli.Tests.Img;

/// <summary>Issue #16: `img` honours QEMU's image locks, and -U/--force-share means what it means in qemu-img.</summary>
/// <remarks>
/// Runs alone: a child process that another test starts meanwhile inherits this process's descriptors for a moment
/// (fork before exec), and with them its open-file-description locks, which would make a lock look held.
/// </remarks>
[Collection(ImageLockCollection.Name)]
public class ImgLockTests
{
    private static Process HoldWithQemuIo(string path)
    {
        var psi = new ProcessStartInfo(ImgHarness.QemuIoPath!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { "-f", "qcow2", "-c", "sleep 20000", path }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        // Ready once qemu-img without -U is refused.
        while (ImgHarness.Tool(ImgHarness.QemuImg!, "info", path).Code == 0)
        {
            if (DateTime.UtcNow > deadline || p.HasExited) throw new Xunit.Sdk.XunitException("qemu-io did not lock " + path);
            Thread.Sleep(20);
        }
        return p;
    }

    [QemuFact]
    public void Commands_on_an_image_in_use_are_refused_unless_forced_and_read_only()
    {
        using var d = new Scratch();
        var p = d["a.qcow2"];
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", p, "8M");
        ImgHarness.QemuIo(p, "write -P 0x33 0 64k");
        var before = File.ReadAllBytes(p);
        using var holder = HoldWithQemuIo(p);
        try
        {
            var (code, _, err) = ImgHarness.Run("info", p);
            Assert.Equal(1, code);
            Assert.Contains("Failed to get shared \"write\" lock".ToLowerInvariant(), err.ToLowerInvariant(), StringComparison.Ordinal);
            Assert.Single(err.Trim().Split('\n'));
            Assert.Equal(0, ImgHarness.Run("info", "-U", p).Code);
            Assert.Equal(0, ImgHarness.Run("map", "--force-share", p).Code);
            Assert.Equal(0, ImgHarness.Run("check", "-U", p).Code);
            Assert.Equal(0, ImgHarness.Run("convert", "-U", "-O", "raw", p, d["copy.raw"]).Code);
            // Writers are refused, -U or not (qemu-img: force-share only with read-only images).
            Assert.Equal(1, ImgHarness.Run("snapshot", "-c", "s", p).Code);
            Assert.Equal(1, ImgHarness.Run("snapshot", "-U", "-c", "s", p).Code);
            Assert.Equal(1, ImgHarness.Run("resize", p, "16M").Code);
            Assert.Equal(1, ImgHarness.Run("check", "-U", "-r", "all", p).Code);
            Assert.Equal(1, ImgHarness.Run("create", "-q", "-f", "qcow2", p, "1M").Code);
            ImgHarness.Qemu("create", "-q", "-f", "raw", d["t.raw"], "8M");
            using (var t = HoldWithRawQemuIo(d["t.raw"]))
            {
                try { Assert.Equal(1, ImgHarness.Run("convert", "-n", "-U", "-O", "raw", p, d["t.raw"]).Code); }
                finally { t.Kill(); t.WaitForExit(); }
            }
        }
        finally
        {
            holder.Kill();
            holder.WaitForExit();
        }
        Assert.Equal(before, File.ReadAllBytes(p));
    }

    private static Process HoldWithRawQemuIo(string path)
    {
        var psi = new ProcessStartInfo(ImgHarness.QemuIoPath!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { "-f", "raw", "-c", "sleep 20000", path }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        // QEMU's raw driver shares writes with other qemu tools, so qemu-img info is no probe here: its lock on byte 100 is.
        var ino = ImgHarness.Tool("/usr/bin/stat", "-c", "%i", path).Out.Trim();
        while (!File.ReadAllText("/proc/locks").Contains($":{ino} 100 ", StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline || p.HasExited) throw new Xunit.Sdk.XunitException("qemu-io did not lock " + path);
            Thread.Sleep(20);
        }
        return p;
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ImageLockCollection
{
    public const string Name = "image locks (no parallel tests)";
}
