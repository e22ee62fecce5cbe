using SharpVmm.Block;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Blk;
using static SharpVmm.Devices.Virtio.Blk.VirtioBlkConstants;

namespace SharpVmm.Devices.Tests.Virtio;

/// <summary>virtio-blk with its per-disk I/O worker: notifications only wake it, completions come from its thread.</summary>
public sealed class BlkIoThreadTests : IDisposable
{
    private const long DiskBytes = 1 << 20;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-vblk-io-").FullName;
    private readonly Ring _ring = new(16);
    private readonly List<IDisposable> _open = [];

    public void Dispose()
    {
        for (int i = _open.Count - 1; i >= 0; i--) _open[i].Dispose();
        _ring.Dispose();
        Directory.Delete(_dir, true);
    }

    private GatedImage Image()
    {
        string path = Path.Combine(_dir, "disk.qcow2");
        ImageFactory.Create(path, "qcow2", DiskBytes).Dispose();
        var img = new GatedImage(ImageFactory.Open(path, new ImageOpenOptions { Format = "qcow2" }));
        _open.Add(img);
        return img;
    }

    private (MmioDriver, VirtioBlk, LevelLine) Device(IBlockImage image)
    {
        var blk = new VirtioBlk(image, "io-thread", ioThread: true);
        _open.Add(blk);
        var line = new LevelLine();
        var d = new MmioDriver(new VirtioMmioTransport(blk, _ring.Memory, line));
        d.BringUp(_ring);
        return (d, blk, line);
    }

    // Request k uses descriptors 3k..3k+2, header at 0x10000 + 32k, status at 0x1F000 + k, data at 0x20000 + 4K*k.
    private void Prepare(int k, uint type, ulong sector, uint dataLen = 0, bool dataWritable = false)
    {
        ulong header = 0x10000 + 32UL * (uint)k, status = 0x1F000 + (uint)k, data = 0x20000 + 0x1000UL * (uint)k;
        _ring.Memory.Write(header, type);
        _ring.Memory.Write(header + 4, 0u);
        _ring.Memory.Write(header + 8, sector);
        _ring.Memory.Write(status, (byte)0xFF);
        ushort h = (ushort)(3 * k);
        if (dataLen > 0)
        {
            _ring.SetDesc(h, header, 16, Ring.Next, (ushort)(h + 1));
            _ring.SetDesc(h + 1, data, dataLen, (ushort)(Ring.Next | (dataWritable ? Ring.Write : 0)), (ushort)(h + 2));
            _ring.SetDesc(h + 2, status, 1, Ring.Write);
        }
        else
        {
            _ring.SetDesc(h, header, 16, Ring.Next, (ushort)(h + 1));
            _ring.SetDesc(h + 1, status, 1, Ring.Write);
        }
        _ring.Offer(h);
    }

    private byte Status(int k) => _ring.Memory.Read<byte>(0x1F000 + (uint)k);
    private static ulong Data(int k) => 0x20000 + 0x1000UL * (uint)k;

    private void WaitUsed(ushort count)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (_ring.UsedIdx != count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"used index {_ring.UsedIdx}, expected {count}");
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void Requests_complete_on_the_worker_in_ring_order_with_an_interrupt()
    {
        var img = Image();
        var (d, blk, line) = Device(img);
        Assert.True(blk.IoThread);
        var pattern = new byte[4096];
        for (int i = 0; i < pattern.Length; i++) pattern[i] = (byte)(i * 13 + 1);
        _ring.Memory.Write(Data(0), pattern);
        _ring.Memory.Write(Data(1), new byte[4096]);
        // Write, flush, then read the same sectors back: one notification for all three.
        img.Gate.Reset(); // hold the worker inside the write, so the notification surely returns first
        Prepare(0, TypeOut, 64, 4096);
        Prepare(1, TypeFlush, 0);
        Prepare(2, TypeIn, 64, 4096, dataWritable: true);
        d.Notify(0);
        Assert.True(img.Entered.Wait(Patience));
        Assert.Equal(0, _ring.UsedIdx); // the vCPU is back while the request is still in the image
        Assert.False(blk.WaitIdle(TimeSpan.FromMilliseconds(50)));
        img.Gate.Set();
        Assert.True(blk.WaitIdle(Patience));
        Assert.Equal(3, _ring.UsedIdx); // idle means every available request was served
        for (int k = 0; k < 3; k++) Assert.Equal((uint)(3 * k), _ring.UsedElem(k).Id);
        Assert.Equal([StatusOk, StatusOk, StatusOk], new[] { Status(0), Status(1), Status(2) });
        Assert.Equal(4097u, _ring.UsedElem(2).Len);
        // The read came from the disk that the write reached before the flush.
        Assert.Equal(pattern, _ring.Memory.GetReadOnlySpan(Data(2), 4096).ToArray());
        Assert.True(img.FlushedAfterWrite);
        Assert.True(line.High);
        Assert.Equal(VirtioMmioTransport.InterruptUsedBuffer, d.InterruptStatus & VirtioMmioTransport.InterruptUsedBuffer);
    }

    [Fact]
    public void A_reset_waits_for_the_request_in_flight_and_the_device_works_after_it()
    {
        var img = Image();
        var (d, _, line) = Device(img);
        img.Gate.Reset();
        Prepare(0, TypeOut, 8, 4096);
        Prepare(1, TypeOut, 16, 4096); // queued behind: must not be served once the reset came
        d.Notify(0);
        Assert.True(img.Entered.Wait(Patience));
        var reset = new Thread(() => d.Write(VirtioMmioRegisters.Status, 0)); // another vCPU
        reset.Start();
        Assert.False(reset.Join(300)); // blocked until the write in flight finishes
        img.Gate.Set();
        Assert.True(reset.Join(Patience));
        Assert.Equal(VirtioStatus.None, d.Status);
        Assert.False(line.High);
        Thread.Sleep(100);
        Assert.Equal(1, img.Writes); // the second request was not served after the reset

        // A fresh driver bring-up on cleared rings works.
        _ring.Memory.Clear(Ring.Desc, 0x3000);
        _ring.SetAvailIdx(0);
        d.BringUp(_ring);
        _ring.Memory.Write(Data(0), new byte[4096]);
        Prepare(0, TypeIn, 8, 4096, dataWritable: true);
        d.Notify(0);
        WaitUsed(1);
        Assert.Equal(StatusOk, Status(0));
    }

    [Fact]
    public void A_malformed_chain_on_the_worker_sets_needs_reset_and_the_vmm_carries_on()
    {
        var img = Image();
        var (d, _, line) = Device(img);
        _ring.SetDesc(0, 0x10000, 16, Ring.Next, 1);
        _ring.SetDesc(1, 0x10010, 16, Ring.Next, 0); // loops back to 0
        _ring.Offer(0);
        d.Notify(0);
        var deadline = DateTime.UtcNow + Patience;
        while ((d.Status & VirtioStatus.DeviceNeedsReset) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "DEVICE_NEEDS_RESET never came");
            Thread.Sleep(1);
        }
        Assert.IsType<VirtqueueException>(d.Transport.LastError);
        Assert.Equal(VirtioMmioTransport.InterruptConfigChange, d.InterruptStatus & VirtioMmioTransport.InterruptConfigChange);
        Assert.True(line.High);
        // Notifications are ignored until the driver resets.
        d.Notify(0);
        Assert.Equal(0, _ring.UsedIdx);

        _ring.Memory.Clear(Ring.Desc, 0x3000);
        _ring.SetAvailIdx(0);
        d.BringUp(_ring);
        Prepare(0, TypeFlush, 0);
        d.Notify(0);
        WaitUsed(1);
        Assert.Equal(StatusOk, Status(0));
    }

    [Fact]
    public void Dispose_stops_the_worker_and_later_notifications_are_harmless()
    {
        var img = Image();
        var (d, blk, _) = Device(img);
        Prepare(0, TypeFlush, 0);
        d.Notify(0);
        WaitUsed(1);
        blk.Dispose();
        Prepare(1, TypeFlush, 0);
        d.Notify(0);
        Thread.Sleep(100);
        Assert.Equal(1, _ring.UsedIdx);
        blk.Dispose(); // twice is fine
    }

    /// <summary>An image whose writes wait at a gate, so a test can hold a request in flight.</summary>
    private sealed class GatedImage(IBlockImage inner) : IBlockImage
    {
        public ManualResetEventSlim Gate { get; } = new(true);
        public ManualResetEventSlim Entered { get; } = new(false);
        private int _writes;
        private bool _written;
        public int Writes => Volatile.Read(ref _writes);
        public bool FlushedAfterWrite { get; private set; }

        public string Path => inner.Path;
        public string FormatName => inner.FormatName;
        public long Size => inner.Size;
        public bool IsReadOnly => inner.IsReadOnly;
        public IBlockImage? Backing => inner.Backing;
        public long ActualSize => inner.ActualSize;
        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            Entered.Set();
            Assert.True(Gate.Wait(Patience));
            inner.Write(offset, data);
            _written = true;
            Interlocked.Increment(ref _writes);
        }

        public void WriteZeroes(long offset, long length, bool unmap) => inner.WriteZeroes(offset, length, unmap);
        public void Discard(long offset, long length) => inner.Discard(offset, length);

        public void Flush()
        {
            FlushedAfterWrite |= _written;
            inner.Flush();
        }

        public BlockStatus GetStatus(long offset, long length) => inner.GetStatus(offset, length);
        public void Resize(long newSize, bool allowShrink) => inner.Resize(newSize, allowShrink);

        public void Dispose()
        {
            Gate.Set();
            inner.Dispose();
        }
    }
}
