using System.Buffers.Binary;
using SharpVmm.Block;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Blk;
using static SharpVmm.Devices.Virtio.Blk.VirtioBlkConstants;

namespace SharpVmm.Devices.Tests.Virtio;

public sealed class BlkTests : IDisposable
{
    private const ulong Header = 0x10000, Data = 0x11000, StatusByte = 0x1F000, Segments = 0x1E000;
    private const long DiskBytes = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-vblk-").FullName;
    private readonly Ring _ring = new(16);
    private readonly List<IDisposable> _open = [];

    public void Dispose()
    {
        foreach (var d in _open) d.Dispose();
        _ring.Dispose();
        Directory.Delete(_dir, true);
    }

    private IBlockImage Image(string format, bool readOnly = false)
    {
        string path = Path.Combine(_dir, "disk." + format);
        if (!File.Exists(path)) ImageFactory.Create(path, format, DiskBytes).Dispose();
        var img = ImageFactory.Open(path, new ImageOpenOptions { Format = format, ReadOnly = readOnly });
        _open.Add(img);
        return img;
    }

    private (MmioDriver, VirtioBlk) Device(IBlockImage image, bool readOnly = false, string? serial = "sharpvmm-disk-0")
    {
        var blk = new VirtioBlk(image, serial, readOnly);
        var d = new MmioDriver(new VirtioMmioTransport(blk, _ring.Memory, new LevelLine()));
        d.BringUp(_ring);
        return (d, blk);
    }

    private ushort _next;

    /// <summary>Builds header [+ data] + status as a chain, offers and notifies; returns (status, used length).</summary>
    private (byte Status, uint Used) Submit(MmioDriver d, uint type, ulong sector, uint dataLen = 0, bool dataWritable = false, ulong data = Data)
    {
        _ring.Memory.Write(Header, type);
        _ring.Memory.Write(Header + 4, 0u);
        _ring.Memory.Write(Header + 8, sector);
        _ring.Memory.Write(StatusByte, (byte)0xFF);
        ushort h = (ushort)(_next++ % 5 * 3), i0 = h; // rotate through descriptor triples of the 16-entry table
        if (dataLen > 0)
        {
            _ring.SetDesc(h, Header, 16, Ring.Next, (ushort)(h + 1));
            _ring.SetDesc(h + 1, data, dataLen, (ushort)(Ring.Next | (dataWritable ? Ring.Write : 0)), (ushort)(h + 2));
            _ring.SetDesc(h + 2, StatusByte, 1, Ring.Write);
        }
        else
        {
            _ring.SetDesc(h, Header, 16, Ring.Next, (ushort)(h + 1));
            _ring.SetDesc(h + 1, StatusByte, 1, Ring.Write);
        }
        ushort before = _ring.UsedIdx;
        _ring.Offer(i0);
        d.Notify(0);
        Assert.Equal((ushort)(before + 1), _ring.UsedIdx);
        var (id, len) = _ring.UsedElem(before);
        Assert.Equal(i0, (ushort)id);
        return (_ring.Memory.Read<byte>(StatusByte), len);
    }

    private void FillData(int len, byte seed)
    {
        var buf = new byte[len];
        for (int i = 0; i < len; i++) buf[i] = (byte)(seed + i * 7);
        _ring.Memory.Write(Data, buf);
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void Write_then_read_back_flush_and_get_id(string format)
    {
        var img = Image(format);
        var (d, _) = Device(img);
        FillData(4096, 3);
        var expected = _ring.Memory.GetReadOnlySpan(Data, 4096).ToArray();
        Assert.Equal((StatusOk, 1u), Submit(d, TypeOut, 100, 4096));
        Assert.Equal((StatusOk, 1u), Submit(d, TypeFlush, 0));
        _ring.Memory.Clear(Data, 4096);
        Assert.Equal((StatusOk, 4097u), Submit(d, TypeIn, 100, 4096, dataWritable: true));
        Assert.Equal(expected, _ring.Memory.GetReadOnlySpan(Data, 4096).ToArray());

        var onDisk = new byte[4096];
        img.Read(100 * 512, onDisk);
        Assert.Equal(expected, onDisk);

        Assert.Equal((StatusOk, 21u), Submit(d, TypeGetId, 0, 20, dataWritable: true));
        Assert.Equal("sharpvmm-disk-0\0\0\0\0\0"u8.ToArray(), _ring.Memory.GetReadOnlySpan(Data, 20).ToArray());
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void Config_reports_capacity_and_limits(string format)
    {
        var (d, blk) = Device(Image(format));
        Span<byte> c = stackalloc byte[ConfigBytes];
        for (int i = 0; i < ConfigBytes; i++) d.Transport.Read(VirtioMmioRegisters.Config + (ulong)i, c.Slice(i, 1));
        Assert.Equal((ulong)DiskBytes / 512, BinaryPrimitives.ReadUInt64LittleEndian(c));
        Assert.Equal(VirtioBlk.SegMax, BinaryPrimitives.ReadUInt32LittleEndian(c[12..]));
        Assert.Equal(512u, BinaryPrimitives.ReadUInt32LittleEndian(c[20..]));
        Assert.Equal(VirtioBlk.MaxDiscardSectors, BinaryPrimitives.ReadUInt32LittleEndian(c[36..]));
        Assert.Equal(VirtioBlk.MaxWriteZeroesSegments, BinaryPrimitives.ReadUInt32LittleEndian(c[52..]));
        ulong f = d.DeviceFeatures();
        Assert.True((f & (1UL << FeatureFlush)) != 0 && (f & (1UL << FeatureDiscard)) != 0 && (f & (1UL << FeatureRo)) == 0);
        Assert.False(blk.ReadOnly);
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void Out_of_range_and_misaligned_requests_are_ioerr(string format)
    {
        var (d, _) = Device(Image(format));
        const ulong sectors = DiskBytes / 512;
        Assert.Equal(StatusIoErr, Submit(d, TypeIn, sectors, 512, dataWritable: true).Status);
        Assert.Equal(StatusIoErr, Submit(d, TypeIn, sectors - 1, 1024, dataWritable: true).Status);
        Assert.Equal(StatusIoErr, Submit(d, TypeOut, ulong.MaxValue, 512).Status);
        Assert.Equal(StatusIoErr, Submit(d, TypeOut, ulong.MaxValue / 512 + 1, 512).Status);
        Assert.Equal(StatusIoErr, Submit(d, TypeIn, 0, 100, dataWritable: true).Status);
        Assert.Equal(StatusOk, Submit(d, TypeIn, sectors - 1, 512, dataWritable: true).Status);
        Assert.Equal(StatusUnsupported, Submit(d, 99, 0).Status);
        Assert.Equal(VirtioStatus.None, d.Status & VirtioStatus.DeviceNeedsReset);
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void Read_only_refuses_writes_but_reads(string format)
    {
        Image(format).Dispose(); // create
        var (d, blk) = Device(Image(format, readOnly: true));
        Assert.True(blk.ReadOnly);
        Assert.True((d.Transport.Device.Features & (1UL << FeatureRo)) != 0);
        FillData(512, 1);
        Assert.Equal(StatusIoErr, Submit(d, TypeOut, 0, 512).Status);
        Assert.Equal(StatusOk, Submit(d, TypeIn, 0, 512, dataWritable: true).Status);
        Assert.Equal(new byte[512], _ring.Memory.GetReadOnlySpan(Data, 512).ToArray());
        Assert.Equal(StatusOk, Submit(d, TypeFlush, 0).Status);
    }

    [Fact]
    public void Read_only_flag_on_a_writable_image()
    {
        var img = Image("raw");
        var (d, _) = Device(img, readOnly: true);
        FillData(512, 9);
        Assert.Equal(StatusIoErr, Submit(d, TypeOut, 0, 512).Status);
        var disk = new byte[512];
        img.Read(0, disk);
        Assert.Equal(new byte[512], disk);
    }

    private void Segment(int i, ulong sector, uint count, uint flags)
    {
        ulong a = Segments + 16UL * (uint)i;
        _ring.Memory.Write(a, sector);
        _ring.Memory.Write(a + 8, count);
        _ring.Memory.Write(a + 12, flags);
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void Write_zeroes_and_discard(string format)
    {
        var img = Image(format);
        var (d, _) = Device(img);
        FillData(8192, 5);
        Assert.Equal(StatusOk, Submit(d, TypeOut, 0, 8192).Status);
        Segment(0, 2, 2, 0);
        Segment(1, 8, 4, SegmentFlagUnmap);
        Assert.Equal(StatusOk, Submit(d, TypeWriteZeroes, 0, 32, data: Segments).Status);
        var disk = new byte[8192];
        img.Read(0, disk);
        Assert.Equal(new byte[1024], disk[1024..2048]);
        Assert.Equal(new byte[2048], disk[4096..6144]);
        Assert.NotEqual(new byte[1024], disk[0..1024]);
        Assert.NotEqual(new byte[1024], disk[2048..3072]);

        Segment(0, 0, 16, 0);
        Assert.Equal(StatusOk, Submit(d, TypeDiscard, 0, 16, data: Segments).Status);
        Segment(0, 0, 16, SegmentFlagUnmap); // unmap flag is not allowed on discard
        Assert.Equal(StatusUnsupported, Submit(d, TypeDiscard, 0, 16, data: Segments).Status);
        Segment(0, DiskBytes / 512 - 1, 2, 0);
        Assert.Equal(StatusIoErr, Submit(d, TypeWriteZeroes, 0, 16, data: Segments).Status);
        Assert.Equal(StatusIoErr, Submit(d, TypeDiscard, 0, 10, data: Segments).Status);
    }

    [Fact]
    public void Data_in_the_wrong_direction_is_ioerr_and_leaves_the_disk_and_device_alone()
    {
        var img = Image("raw");
        var (d, _) = Device(img);
        FillData(512, 9);
        Assert.Equal((StatusIoErr, 1u), Submit(d, TypeIn, 0, 512, dataWritable: false)); // read into a device-readable buffer
        Assert.Equal((StatusIoErr, 1u), Submit(d, TypeOut, 0, 512, dataWritable: true)); // write from a device-writable one
        var disk = new byte[512];
        img.Read(0, disk);
        Assert.All(disk, b => Assert.Equal(0, b));
        Assert.Equal(VirtioStatus.DriverOk, d.Status & (VirtioStatus.DriverOk | VirtioStatus.DeviceNeedsReset));
        Assert.Equal(StatusOk, Submit(d, TypeOut, 0, 512).Status);
    }

    [Fact]
    public void Short_header_is_ioerr_and_no_status_byte_needs_reset()
    {
        var (d, _) = Device(Image("raw"));
        _ring.SetDesc(0, Header, 8, Ring.Next, 1);
        _ring.SetDesc(1, StatusByte, 1, Ring.Write);
        _ring.Offer(0);
        d.Notify(0);
        Assert.Equal(StatusIoErr, _ring.Memory.Read<byte>(StatusByte));

        _ring.SetDesc(2, Header, 16);
        _ring.Offer(2);
        d.Notify(0);
        Assert.IsType<VirtioProtocolException>(d.Transport.LastError);
        Assert.True((d.Status & VirtioStatus.DeviceNeedsReset) != 0);
    }

    [Fact]
    public void Scattered_data_through_an_indirect_table()
    {
        var img = Image("qcow2");
        var (d, _) = Device(img);
        const ulong table = 0x1C000;
        FillData(1536, 77);
        _ring.Memory.Write(Header, TypeOut);
        _ring.Memory.Write(Header + 8, 10UL);
        // header split over two descriptors, data over three (one in high RAM).
        _ring.Memory.Write(Ring.HighBase, _ring.Memory.GetReadOnlySpan(Data + 1000, 536).ToArray());
        _ring.SetDesc(0, Header, 4, Ring.Next, 1, table);
        _ring.SetDesc(1, Header + 4, 12, Ring.Next, 2, table);
        _ring.SetDesc(2, Data, 1000, Ring.Next, 3, table);
        _ring.SetDesc(3, Ring.HighBase, 536, Ring.Next, 4, table);
        _ring.SetDesc(4, StatusByte, 1, Ring.Write, 0, table);
        _ring.SetDesc(0, table, 5 * 16, Ring.Indirect);
        _ring.Offer(0);
        d.Notify(0);
        Assert.Equal(StatusOk, _ring.Memory.Read<byte>(StatusByte));
        var disk = new byte[1536];
        img.Read(10 * 512, disk);
        Assert.Equal(_ring.Memory.GetReadOnlySpan(Data, 1536).ToArray(), disk);
    }
    [Fact]
    public void Requests_are_counted_per_kind_as_QEMUs_block_accounting_does()
    {
        var (d, blk) = Device(Image("raw"));
        FillData(4096, 3);
        Submit(d, TypeOut, 100, 4096);
        Submit(d, TypeOut, 8, 1024);
        Submit(d, TypeFlush, 0);
        Submit(d, TypeIn, 100, 4096, dataWritable: true);
        Submit(d, TypeIn, DiskBytes / 512, 512, dataWritable: true); // past the end: refused, not I/O
        Submit(d, TypeGetId, 0, 20, dataWritable: true); // not I/O either

        var s = blk.Stats;
        Assert.Equal(2, s.Operations(BlockRequestKind.Write));
        Assert.Equal(4096 + 1024, s.Bytes(BlockRequestKind.Write));
        Assert.Equal(100 * 512 + 4096, s.HighestWriteOffset);
        Assert.Equal(1, s.Operations(BlockRequestKind.Flush));
        Assert.Equal(1, s.Operations(BlockRequestKind.Read));
        Assert.Equal(4096, s.Bytes(BlockRequestKind.Read));
        Assert.Equal(1, s.InvalidOperations(BlockRequestKind.Read));
        Assert.Equal(0, s.FailedOperations(BlockRequestKind.Read));
        Assert.True(s.TotalTimeNs(BlockRequestKind.Read) > 0);
        Assert.NotNull(s.IdleTimeNs);
    }
}
