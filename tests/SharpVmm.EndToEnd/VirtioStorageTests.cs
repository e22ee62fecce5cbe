using System.Security.Cryptography;
using System.Text;
using SharpVmm.Block;

namespace SharpVmm.EndToEnd;

/// <summary>
/// Debian's virtio drivers on emu against real images: a filesystem made by the guest survives a power-off and is
/// read back by a second boot, images made by qemu-img work both ways, and the entropy and console devices carry data.
/// </summary>
public sealed class VirtioStorageTests : IDisposable
{
    private const int BootTimeoutSeconds = 900; // a Linux boot on emu takes minutes on a loaded 2-core machine
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-vstorage-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static SharpVmmProcess.Result Boot(string guestCommand, params string[] extra)
    {
        string[] args =
        [
            "run", "--accel", "emu", "--memory", "256M", "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd,
            .. extra,
            "--append", "console=ttyS0 quiet sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(guestCommand)),
        ];
        var r = SharpVmmProcess.Run(BootTimeoutSeconds, args);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stderr}\n{r.Stdout}");
        Assert.Contains("SHARPVMM-INIT-OK", r.Stdout);
        Assert.DoesNotContain("SHARPVMM-MODULE-FAILED", r.Stdout);
        Assert.True(r.Stdout.Contains("SHARPVMM-EXIT=0", StringComparison.Ordinal), $"the guest command failed:\n{r.Stdout}");
        return r;
    }

    /// <summary>The guest's lines that start with <paramref name="tag"/> and a space, without the tag.</summary>
    private static List<string> Tagged(string stdout, string tag) =>
        [.. stdout.Replace("\r", "").Split('\n').Where(l => l.StartsWith(tag + " ", StringComparison.Ordinal)).Select(l => l[(tag.Length + 1)..].Trim())];

    private static void RequireTools(params string[] tools)
    {
        foreach (var t in tools)
            if (!Tools.Exists(t)) Assert.Fail($"{t} is missing: scripts/setup.sh installs qemu-utils and e2fsprogs");
    }

    private static string Md5Hex(byte[] data) => Convert.ToHexStringLower(MD5.HashData(data));

    [LinuxGuestFact]
    public void A_filesystem_made_by_the_guest_on_qcow2_survives_poweroff_and_a_second_boot_reads_it_back()
    {
        RequireTools("qemu-img", "e2fsck", "debugfs");
        string disk = Path.Combine(_dir, "fs.qcow2");
        var create = SharpVmmProcess.Run(120, "img", "create", "-q", "-f", "qcow2", disk, "48M");
        Assert.True(create.ExitCode == 0, create.Stderr);
        string hvc = Path.Combine(_dir, "hvc0.txt");

        // Boot 1: make an ext2 filesystem (the Debian kernel's built-in ext4 driver serves it), write files, unmount.
        // Also: 64 bytes from /dev/hwrng, and a line through /dev/hvc0 to the --console file.
        string first = string.Join('\n',
            "set -e",
            "mke2fs -F -L sharpvmm /dev/vda >/dev/null 2>&1",
            "mount -t ext2 /dev/vda /mnt",
            "mkdir /mnt/dir",
            "seq 1 50000 > /mnt/dir/seq.txt",
            "echo sharpvmm-file-contents > /mnt/hello.txt",
            "dd if=/dev/hwrng of=/mnt/random.bin bs=64 count=16 2>/dev/null",
            "for f in /mnt/dir/seq.txt /mnt/hello.txt /mnt/random.bin; do echo \"MD5 $(md5sum $f)\"; done",
            "echo \"RNG $(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | od -An -tx1 | tr -d ' \\n')\"",
            "echo sharpvmm-through-hvc0 > /dev/hvc0",
            "sync",
            "umount /mnt",
            "echo UNMOUNTED");
        var r1 = Boot(first, "--disk", $"{disk},format=qcow2", "--rng", "--console", "file:" + hvc);
        Assert.Contains("UNMOUNTED", r1.Stdout);
        var md5First = Tagged(r1.Stdout, "MD5");
        Assert.Equal(3, md5First.Count);
        // seq's output is known on the host: the guest wrote exactly those bytes.
        var seq = new StringBuilder();
        for (int i = 1; i <= 50000; i++) seq.Append(i).Append('\n');
        Assert.Equal($"{Md5Hex(Encoding.ASCII.GetBytes(seq.ToString()))}  /mnt/dir/seq.txt", md5First[0]);
        Assert.Equal($"{Md5Hex("sharpvmm-file-contents\n"u8.ToArray())}  /mnt/hello.txt", md5First[1]);
        string rng = Assert.Single(Tagged(r1.Stdout, "RNG"));
        Assert.Matches("^[0-9a-f]{128}$", rng);
        Assert.NotEqual(new string('0', 128), rng);
        Assert.Equal("sharpvmm-through-hvc0\n", File.ReadAllText(hvc).Replace("\r", ""));

        // The host's view: the qcow2 is consistent and holds a clean ext2 with the files.
        Assert.Contains("No errors were found", Tools.Run("qemu-img", "check", disk));
        string raw = Path.Combine(_dir, "fs.raw");
        Assert.Equal("", Tools.Run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", disk, raw));
        string fsck = Tools.Run("e2fsck", "-fn", raw);
        Assert.Matches(@"sharpvmm: 15/\d+ files", fsck); // the label; inodes 1-11 (root, lost+found) + dir + 3 files
        Assert.DoesNotContain("Fix? no", fsck);
        Assert.DoesNotContain("UNEXPECTED INCONSISTENCY", fsck);
        Assert.Contains("sharpvmm-file-contents", Tools.Run("debugfs", "-R", "cat /hello.txt", raw));

        // Boot 2: a fresh VM mounts the same image and reads every file back unchanged.
        string second = string.Join('\n',
            "set -e",
            "mount -t ext2 -o ro /dev/vda /mnt",
            "for f in /mnt/dir/seq.txt /mnt/hello.txt /mnt/random.bin; do echo \"MD5 $(md5sum $f)\"; done",
            "echo \"TEXT $(cat /mnt/hello.txt)\"",
            "umount /mnt");
        var r2 = Boot(second, "--disk", $"{disk},format=qcow2");
        Assert.Equal(md5First, Tagged(r2.Stdout, "MD5"));
        Assert.Equal(["sharpvmm-file-contents"], Tagged(r2.Stdout, "TEXT"));
        Assert.Contains("No errors were found", Tools.Run("qemu-img", "check", disk));
    }

    [LinuxGuestFact]
    public void Raw_and_qcow2_images_made_by_qemu_img_are_read_and_written_by_the_guest()
    {
        RequireTools("qemu-img", "qemu-io");
        string raw = Path.Combine(_dir, "qemu.raw"), qcow2 = Path.Combine(_dir, "qemu.qcow2");
        Assert.Equal("", Tools.Run("qemu-img", "create", "-q", "-f", "raw", raw, "16M"));
        Assert.Equal("", Tools.Run("qemu-img", "create", "-q", "-f", "qcow2", qcow2, "16M"));
        // QEMU writes 64 KiB of 0x5a at the start of each: the guest must read exactly that.
        foreach (var (path, fmt) in new[] { (raw, "raw"), (qcow2, "qcow2") })
            Assert.DoesNotContain("error", Tools.Run("qemu-io", "-f", fmt, "-c", "write -P 0x5a 0 64k", path), StringComparison.OrdinalIgnoreCase);
        string expectedMd5 = Md5Hex(Enumerable.Repeat((byte)0x5a, 65536).ToArray());

        // The guest reads both, then writes 4 KiB of 'Q' (direct I/O) at 64 KiB on vda and at 1 MiB on vdb.
        string cmd = string.Join('\n',
            "set -e",
            "for d in vda vdb; do echo \"DISK $d $(cat /sys/block/$d/size) $(cat /sys/block/$d/serial) $(dd if=/dev/$d bs=65536 count=1 2>/dev/null | md5sum | cut -d' ' -f1)\"; done",
            "dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\\0' 'Q' | dd of=/dev/vda bs=4096 seek=16 oflag=direct 2>/dev/null",
            "dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\\0' 'Q' | dd of=/dev/vdb bs=4096 seek=256 oflag=direct 2>/dev/null",
            "sync",
            "echo WRITTEN");
        var r = Boot(cmd, "--disk", $"{raw},format=raw", "--disk", $"{qcow2},format=qcow2");
        Assert.Contains("WRITTEN", r.Stdout);
        var disks = Tagged(r.Stdout, "DISK");
        Assert.Equal(2, disks.Count);
        Assert.Equal($"vda 32768 sharpvmm-disk0 {expectedMd5}", disks[0]);
        Assert.Equal($"vdb 32768 sharpvmm-disk1 {expectedMd5}", disks[1]);

        // QEMU sees the guest's writes and the old data around them; the qcow2 checks clean.
        string rawIo = Tools.Run("qemu-io", "-f", "raw", "-c", "read -P 0x5a 0 64k", "-c", "read -P 0x51 64k 4k", "-c", "read -P 0 68k 4k", raw);
        string qIo = Tools.Run("qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 64k", "-c", "read -P 0 1020k 4k", "-c", "read -P 0x51 1M 4k",
            "-c", "read -P 0 1028k 4k", qcow2);
        Assert.DoesNotContain("verification failed", rawIo + qIo);
        Assert.Equal(7, (rawIo + qIo).Split("bytes at offset").Length - 1);
        Assert.Contains("No errors were found", Tools.Run("qemu-img", "check", qcow2));

        // Our own library agrees byte for byte.
        foreach (var (path, fmt, at, before) in new[] { (raw, "raw", 65536L, (byte)0x5a), (qcow2, "qcow2", 1048576L, (byte)0) })
        {
            using var img = ImageFactory.Open(path, new ImageOpenOptions { Format = fmt, ReadOnly = true });
            var buf = new byte[8192];
            img.Read(at - 4096, buf);
            Assert.All(buf.AsSpan(0, 4096).ToArray(), b => Assert.Equal(before, b));
            Assert.All(buf.AsSpan(4096).ToArray(), b => Assert.Equal((byte)'Q', b));
        }
    }
}
