using System.Buffers.Binary;
using System.Text;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Firmware;

namespace SharpVmm.Devices.Tests.Firmware;

public sealed class FwCfgTests
{
    private static IoBus BusWith(FwCfg f)
    {
        var bus = new IoBus();
        bus.RegisterPort(FwCfg.SelectorPort, FwCfg.WindowSize, f, "fw_cfg");
        return bus;
    }

    private static byte[] ReadItem(IoBus bus, ushort key, int length)
    {
        Span<byte> sel = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(sel, key);
        bus.PioWrite(FwCfg.SelectorPort, sel);
        var result = new byte[length];
        Span<byte> b = stackalloc byte[1];
        for (int i = 0; i < length; i++)
        {
            bus.PioRead(FwCfg.SelectorPort + 1, b);
            result[i] = b[0];
        }
        return result;
    }

    [Fact]
    public void Signature_id_cpu_count_ram_size_and_command_line_read_as_qemu_lays_them_out()
    {
        var bus = BusWith(FwCfg.ForMachine(cpus: 3, ramBytes: 256UL << 20, commandLine: "a b"));
        Assert.Equal("QEMU"u8.ToArray(), ReadItem(bus, FwCfg.KeySignature, 4));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(ReadItem(bus, FwCfg.KeyId, 4)));
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(ReadItem(bus, FwCfg.KeyCpuCount, 2)));
        Assert.Equal(256UL << 20, BinaryPrimitives.ReadUInt64LittleEndian(ReadItem(bus, FwCfg.KeyRamSize, 8)));
        Assert.Equal(4u, BinaryPrimitives.ReadUInt32LittleEndian(ReadItem(bus, FwCfg.KeyCmdlineSize, 4)));
        Assert.Equal("a b\0"u8.ToArray(), ReadItem(bus, FwCfg.KeyCmdlineData, 4));
    }

    [Fact]
    public void Unknown_keys_and_reads_past_an_item_give_zeros_and_selecting_rewinds()
    {
        var bus = BusWith(FwCfg.ForMachine(1, 1 << 20, null));
        Assert.Equal(new byte[6], ReadItem(bus, 0x1234, 6));
        Assert.Equal("QEMU\0\0"u8.ToArray(), ReadItem(bus, FwCfg.KeySignature, 6));
        Assert.Equal("QE"u8.ToArray(), ReadItem(bus, FwCfg.KeySignature, 2));
        Assert.Equal(new byte[4], ReadItem(bus, FwCfg.KeyCmdlineSize, 4)); // no command line given
    }

    [Fact]
    public void File_directory_lists_files_big_endian_and_each_file_reads_under_its_key()
    {
        var f = new FwCfg();
        var bus = BusWith(f);
        Assert.Equal(new byte[4], ReadItem(bus, FwCfg.KeyFileDir, 4)); // empty directory: count 0
        ushort key = f.AddFile("etc/test", [1, 2, 3]);
        Assert.Equal(FwCfg.FirstFileKey, key);
        var dir = ReadItem(bus, FwCfg.KeyFileDir, 4 + 64);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(dir));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32BigEndian(dir.AsSpan(4)));
        Assert.Equal(key, BinaryPrimitives.ReadUInt16BigEndian(dir.AsSpan(8)));
        Assert.Equal("etc/test", Encoding.ASCII.GetString(dir, 12, 8));
        Assert.Equal(0, dir[20]);
        Assert.Equal([1, 2, 3, 0], ReadItem(bus, key, 4));
        Assert.Throws<ArgumentException>(() => f.AddFile("etc/test", []));
        Assert.Throws<ArgumentException>(() => f.AddFile(new string('x', 56), []));
    }
}
