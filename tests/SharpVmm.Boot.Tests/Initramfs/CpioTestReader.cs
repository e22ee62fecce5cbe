using System.Globalization;
using System.Text;

namespace SharpVmm.Boot.Tests.Initramfs;

/// <summary>An independent newc reader for the tests: strict about magic, padding and the trailer.</summary>
internal static class CpioTestReader
{
    internal sealed record Entry(string Name, uint Inode, uint Mode, uint Uid, uint Gid, uint Nlink, uint Mtime,
        uint RdevMajor, uint RdevMinor, byte[] Data)
    {
        public uint Type => Mode & 0xF000;
        public uint Permissions => Mode & 0xFFF;
        public string Text => Encoding.UTF8.GetString(Data);
    }

    public static List<Entry> Read(byte[] archive)
    {
        var entries = new List<Entry>();
        int at = 0;
        while (true)
        {
            Assert.True(at + 110 <= archive.Length, $"truncated header at {at}");
            Assert.Equal(0, at % 4);
            string header = Encoding.ASCII.GetString(archive, at, 110);
            Assert.Equal("070701", header[..6]);
            uint F(int i) => uint.Parse(header.AsSpan(6 + i * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            uint size = F(6), nameSize = F(11);
            Assert.Equal(0u, F(12)); // check field
            Assert.True(nameSize >= 1);
            int nameAt = at + 110;
            Assert.Equal(0, archive[nameAt + (int)nameSize - 1]);
            string name = Encoding.UTF8.GetString(archive, nameAt, (int)nameSize - 1);
            int dataAt = Align(nameAt + (int)nameSize);
            for (int i = nameAt + (int)nameSize; i < dataAt; i++)
                Assert.Equal(0, archive[i]);
            Assert.True(dataAt + size <= archive.Length, $"entry '{name}' data runs past the end");
            byte[] data = archive.AsSpan(dataAt, (int)size).ToArray();
            int next = Align(dataAt + (int)size);
            for (int i = dataAt + (int)size; i < next; i++)
                Assert.Equal(0, archive[i]);
            at = next;
            if (name == "TRAILER!!!")
            {
                Assert.Equal(archive.Length, at);
                return entries;
            }
            entries.Add(new Entry(name, F(0), F(1), F(2), F(3), F(4), F(5), F(9), F(10), data));
        }
    }

    private static int Align(int n) => (n + 3) & ~3;
}
