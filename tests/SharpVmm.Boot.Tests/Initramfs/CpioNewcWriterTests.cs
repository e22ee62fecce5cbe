using System.Text;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Boot.Tests.Initramfs;

public class CpioNewcWriterTests
{
    private static string Header(uint ino, uint mode, uint nlink, uint size, uint rdevMajor, uint rdevMinor, uint nameSize) =>
        "070701" + $"{ino:X8}{mode:X8}{0:X8}{0:X8}{nlink:X8}{0:X8}{size:X8}{0:X8}{0:X8}{rdevMajor:X8}{rdevMinor:X8}{nameSize:X8}{0:X8}";

    [Fact]
    public void File_entry_and_trailer_are_byte_exact()
    {
        var ms = new MemoryStream();
        var w = new CpioNewcWriter(ms);
        w.WriteEntry("a", CpioEntryType.RegularFile, (UnixFileMode)0x1A4, "xyz"u8);
        w.Finish();

        string expected =
            Header(1, 0x81A4, 1, 3, 0, 0, 2) + "a\0" + "xyz\0" +
            Header(0, 0, 1, 0, 0, 0, 11) + "TRAILER!!!\0" + "\0\0\0";
        Assert.Equal(Encoding.ASCII.GetBytes(expected), ms.ToArray());
        Assert.Equal(240, ms.Length);
        Assert.Equal(ms.Length, w.Position);
    }

    [Fact]
    public void Names_and_data_are_padded_to_four_bytes_for_every_length()
    {
        for (int nameLen = 1; nameLen <= 8; nameLen++)
        {
            for (int dataLen = 0; dataLen <= 8; dataLen++)
            {
                var ms = new MemoryStream();
                var w = new CpioNewcWriter(ms);
                string name = new('n', nameLen);
                byte[] data = Enumerable.Range(1, dataLen).Select(i => (byte)i).ToArray();
                w.WriteEntry(name, CpioEntryType.RegularFile, (UnixFileMode)0x1A4, data);
                w.Finish();
                var bytes = ms.ToArray();
                Assert.Equal(0, bytes.Length % 4);
                int dataAt = (110 + nameLen + 1 + 3) & ~3;
                Assert.Equal(data, bytes.AsSpan(dataAt, dataLen).ToArray());
                var entry = Assert.Single(CpioTestReader.Read(bytes));
                Assert.Equal(name, entry.Name);
                Assert.Equal(data, entry.Data);
            }
        }
    }

    [Fact]
    public void Device_symlink_and_directory_fields()
    {
        var ms = new MemoryStream();
        var w = new CpioNewcWriter(ms);
        w.WriteEntry("dev", CpioEntryType.Directory, (UnixFileMode)0x1ED, []);
        w.WriteEntry("dev/console", CpioEntryType.CharacterDevice, (UnixFileMode)0x180, [], 5, 1);
        w.WriteEntry("dev/vda", CpioEntryType.BlockDevice, (UnixFileMode)0x1B0, [], 254, 0);
        w.WriteEntry("bin/sh", CpioEntryType.Symlink, (UnixFileMode)0x1FF, "busybox"u8);
        w.Finish();
        var e = CpioTestReader.Read(ms.ToArray());

        Assert.Equal(0x41EDu, e[0].Mode);
        Assert.Equal(2u, e[0].Nlink);
        Assert.Equal(0x2180u, e[1].Mode);
        Assert.Equal((5u, 1u), (e[1].RdevMajor, e[1].RdevMinor));
        Assert.Equal(0x61B0u, e[2].Mode);
        Assert.Equal((254u, 0u), (e[2].RdevMajor, e[2].RdevMinor));
        Assert.Equal(0xA1FFu, e[3].Mode);
        Assert.Equal("busybox", e[3].Text);
        Assert.Equal([1u, 2u, 3u, 4u], e.Select(x => x.Inode));
        Assert.All(e, x => Assert.Equal((0u, 0u, 0u), (x.Uid, x.Gid, x.Mtime)));
    }

    [Fact]
    public void Streamed_file_that_is_shorter_than_announced_is_an_error()
    {
        var w = new CpioNewcWriter(new MemoryStream());
        var ex = Assert.Throws<InitramfsException>(() =>
            w.WriteFile("f", (UnixFileMode)0x1A4, new MemoryStream(new byte[10]), 20));
        Assert.Contains("shorter", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Directories_and_devices_cannot_carry_data_and_nothing_follows_the_trailer()
    {
        var w = new CpioNewcWriter(new MemoryStream());
        Assert.Throws<InitramfsException>(() => w.WriteEntry("d", CpioEntryType.Directory, (UnixFileMode)0x1ED, "x"u8));
        Assert.Throws<InitramfsException>(() => w.WriteEntry("a\0b", CpioEntryType.RegularFile, (UnixFileMode)0x1A4, []));
        w.Finish();
        Assert.Throws<InvalidOperationException>(() => w.WriteEntry("late", CpioEntryType.RegularFile, (UnixFileMode)0x1A4, []));
    }
}
