using System.Diagnostics;

namespace SharpVmm.Block.Tests;

/// <summary>
/// Issue #16 finding 2: SharpVmm takes QEMU's image locks (OFD byte-range locks on bytes 100+perm / 200+perm), so it
/// and qemu-img/qemu-io refuse each other's conflicting opens as each refuses its own.
/// </summary>
public class ImageLockTests
{
    /// <summary>qemu-io holding the image open (read-write unless args say otherwise) until disposed.</summary>
    private sealed class QemuIoHolder : IDisposable
    {
        private readonly Process _p;

        public QemuIoHolder(string path, string format, params string[] extra)
        {
            var psi = new ProcessStartInfo(Qemu.Io!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
            foreach (var a in extra) psi.ArgumentList.Add(a);
            foreach (var a in new[] { "-f", format, "-c", "sleep 20000", path }) psi.ArgumentList.Add(a);
            _p = Process.Start(psi)!;
            // Wait until its locks are in /proc/locks (byte 100, consistent read, is always taken).
            var ino = Inode(path);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!File.ReadAllText("/proc/locks").Contains($":{ino} 100 ", StringComparison.Ordinal))
            {
                if (DateTime.UtcNow > deadline || _p.HasExited) throw new Xunit.Sdk.XunitException("qemu-io did not lock the image: " + _p.StandardError.ReadToEnd());
                Thread.Sleep(20);
            }
        }

        public void Dispose()
        {
            try { _p.Kill(); } catch (InvalidOperationException) { }
            _p.WaitForExit();
            _p.Dispose();
        }
    }

    private static string Inode(string path)
    {
        var (code, o, _) = Qemu.Run("/usr/bin/stat", "-c", "%i", path);
        Assert.Equal(0, code);
        return o.Trim();
    }

    private static string MakeQcow2(TempDir dir, string name = "d.qcow2")
    {
        var p = dir[name];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", p, "8M");
        Qemu.IoOk(p, "write -P 0x5a 0 64k");
        return p;
    }

    [QemuFact]
    public void Our_writer_makes_qemu_refuse_writers_and_unforced_readers()
    {
        using var dir = new TempDir();
        var p = MakeQcow2(dir);
        using (ImageFactory.Open(p))
        {
            var w = Qemu.Run(Qemu.Io!, "-f", "qcow2", "-c", "write 0 512", p);
            Assert.NotEqual(0, w.Code);
            Assert.Contains("Failed to get \"write\" lock", w.Err, StringComparison.Ordinal);
            var r = Qemu.Run(Qemu.Img!, "info", p);
            Assert.NotEqual(0, r.Code);
            Assert.Contains("Failed to get shared \"write\" lock", r.Err, StringComparison.Ordinal);
            // -U reads anyway, as between two QEMUs.
            Assert.Equal(0, Qemu.Run(Qemu.Img!, "info", "-U", p).Code);
            // qemu-img create must not replace a disk in use.
            var c = Qemu.Run(Qemu.Img!, "create", "-f", "qcow2", p, "1M");
            Assert.NotEqual(0, c.Code);
        }
        Qemu.IoOk(p, "read -P 0x5a 0 64k");
        // Closed: the locks are gone.
        Qemu.IoOk(p, "write -P 0x11 0 512");
    }

    [QemuFact]
    public void Qemu_writer_makes_us_refuse_writers_readers_and_create_in_one_line()
    {
        using var dir = new TempDir();
        var p = MakeQcow2(dir);
        var before = File.ReadAllBytes(p);
        using (new QemuIoHolder(p, "qcow2"))
        {
            var w = Assert.Throws<ImageLockedException>(() => ImageFactory.Open(p));
            Assert.DoesNotContain('\n', w.Message);
            Assert.Contains("\"write\" lock", w.Message, StringComparison.Ordinal);
            Assert.Contains("open read-write", w.Message, StringComparison.Ordinal);
            var r = Assert.Throws<ImageLockedException>(() => ImageFactory.Open(p, new ImageOpenOptions { ReadOnly = true }));
            Assert.Contains("shared \"write\" lock", r.Message, StringComparison.Ordinal);
            Assert.Contains("--force-share", r.Message, StringComparison.Ordinal);
            using (var shared = ImageFactory.Open(p, new ImageOpenOptions { ReadOnly = true, ForceShare = true }))
                Assert.Equal(8L << 20, shared.Size);
            Assert.Throws<ImageLockedException>(() => ImageFactory.Create(p, "qcow2", 1 << 20).Dispose());
            Assert.Throws<ImageLockedException>(() => ImageFactory.Create(p, "raw", 1 << 20).Dispose());
        }
        Assert.Equal(before, File.ReadAllBytes(p));
    }

    [QemuFact]
    public void Qemu_reader_blocks_our_writer_but_not_our_reader()
    {
        using var dir = new TempDir();
        var p = MakeQcow2(dir);
        using (new QemuIoHolder(p, "qcow2", "-r"))
        {
            var w = Assert.Throws<ImageLockedException>(() => ImageFactory.Open(p));
            Assert.Contains("does not let others write", w.Message, StringComparison.Ordinal);
            using var r = ImageFactory.Open(p, new ImageOpenOptions { ReadOnly = true });
        }
        ImageFactory.Open(p).Dispose();
    }

    [QemuFact]
    public void Raw_images_and_backing_files_are_locked_too()
    {
        using var dir = new TempDir();
        var raw = dir["d.raw"];
        ImageFactory.Create(raw, "raw", 1 << 20).Dispose();
        using (new QemuIoHolder(raw, "raw"))
            Assert.Throws<ImageLockedException>(() => ImageFactory.Open(raw));

        var b = MakeQcow2(dir, "base.qcow2");
        Qemu.ImgOk("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir["top.qcow2"]);
        using (ImageFactory.Open(dir["top.qcow2"]))
        {
            // The VM's backing file may be read by others but not written.
            Assert.NotEqual(0, Qemu.Run(Qemu.Io!, "-f", "qcow2", "-c", "write 0 512", b).Code);
            Assert.Equal(0, Qemu.Run(Qemu.Io!, "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 512", b).Code);
        }
    }

    [Fact]
    public void One_process_refuses_a_second_writer_of_the_same_file()
    {
        using var dir = new TempDir();
        var p = dir["d.qcow2"];
        ImageFactory.Create(p, "qcow2", 1 << 20).Dispose();
        using (ImageFactory.Open(p))
        {
            Assert.Throws<ImageLockedException>(() => ImageFactory.Open(p));
            // Through a symlink it is the same file and the same lock.
            File.CreateSymbolicLink(dir["link.qcow2"], p);
            Assert.Throws<ImageLockedException>(() => ImageFactory.Open(dir["link.qcow2"]));
            Assert.Throws<ImageLockedException>(() => ImageFactory.Open(p, new ImageOpenOptions { ReadOnly = true }));
        }
        using (ImageFactory.Open(p, new ImageOpenOptions { ReadOnly = true }))
        using (ImageFactory.Open(p, new ImageOpenOptions { ReadOnly = true }))
            Assert.Throws<ImageLockedException>(() => ImageFactory.Open(p));
        Assert.Throws<BlockImageException>(() => ImageFactory.Open(p, new ImageOpenOptions { ForceShare = true }));
    }
}
