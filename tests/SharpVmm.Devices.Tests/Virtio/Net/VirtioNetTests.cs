using System.Buffers.Binary;
using SharpVmm.Devices.Net;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Net;

namespace SharpVmm.Devices.Tests.Virtio.Net;

public sealed class VirtioNetTests : IDisposable
{
    internal sealed class Backend : INetBackend
    {
        public readonly List<byte[]> Sent = [];
        public NetFrameHandler? Receive;
        public bool Disposed;
        public string Description => "test";
        public void Start(NetFrameHandler receive) => Receive = receive;
        public void Send(ReadOnlySpan<byte> frame) => Sent.Add(frame.ToArray());
        public void Dispose() => Disposed = true;
    }

    private const ulong TxDesc = 0x4000, TxAvail = 0x5000, TxUsed = 0x6000;
    private static readonly MacAddress Mac = MacAddress.Parse("52:54:00:ab:cd:ef");

    private readonly Ring _rx = new(8);
    private readonly Ring _tx;
    private readonly Backend _backend = new();
    private readonly VirtioNet _net;
    private readonly LevelLine _line = new();
    private readonly MmioDriver _d;

    public VirtioNetTests()
    {
        _tx = new Ring(8, _rx.Memory, TxDesc, TxAvail, TxUsed);
        _net = new VirtioNet(_backend, Mac);
        _d = new MmioDriver(new VirtioMmioTransport(_net, _rx.Memory, _line));
        Assert.True(_d.Negotiate(_d.DeviceFeatures()));
        _d.SetupQueue(0, 8);
        _d.SetupQueue(1, 8, TxDesc, TxAvail, TxUsed);
        _d.SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
    }

    public void Dispose()
    {
        _tx.Dispose();
        _rx.Dispose();
    }

    private static byte[] Frame(int length, byte seed)
    {
        var f = new byte[length];
        for (int i = 0; i < length; i++) f[i] = (byte)(seed + i * 7);
        return f;
    }

    private void AssertHealthy() => Assert.Equal(0u, (uint)(_d.Status & VirtioStatus.DeviceNeedsReset));

    [Fact]
    public void Offers_mac_status_and_version_1_and_shows_the_mac_and_link_in_config_space()
    {
        ulong f = _d.DeviceFeatures();
        Assert.NotEqual(0UL, f & 1UL << VirtioNetConstants.FeatureMac);
        Assert.NotEqual(0UL, f & 1UL << VirtioNetConstants.FeatureStatus);
        Assert.NotEqual(0UL, f & VirtioFeatures.Version1);
        Assert.Equal(1u, _d.Read(VirtioMmioRegisters.DeviceId));
        var config = new byte[8];
        _d.Transport.Read(VirtioMmioRegisters.Config, config.AsSpan(0, 4));
        _d.Transport.Read(VirtioMmioRegisters.Config + 4, config.AsSpan(4, 4));
        Assert.Equal(Mac.ToArray(), config[..6]);
        Assert.Equal(VirtioNetConstants.StatusLinkUp, BinaryPrimitives.ReadUInt16LittleEndian(config.AsSpan(6)));
        Assert.NotNull(_backend.Receive); // DRIVER_OK started the backend
    }

    [Fact]
    public void Transmit_strips_the_header_and_sends_the_frame_even_when_split_across_descriptors()
    {
        var frame = Frame(100, 3);
        _rx.Memory.Write(0x10000, new byte[VirtioNetConstants.HeaderSize]);
        _rx.Memory.Write(0x10000 + VirtioNetConstants.HeaderSize, frame.AsSpan(0, 20)); // header and the frame's start
        _rx.Memory.Write(Ring.HighBase, frame.AsSpan(20));                               // the rest above the hole
        _tx.SetDesc(0, 0x10000, VirtioNetConstants.HeaderSize + 20, Ring.Next, 1);
        _tx.SetDesc(1, Ring.HighBase, 80);
        _tx.Offer(0);
        _d.Notify(1);
        Assert.Equal(frame, Assert.Single(_backend.Sent));
        Assert.Equal(1, _tx.UsedIdx);
        Assert.Equal((1L, 100L), (_net.TxFrames, _net.TxBytes));
        Assert.NotEqual(0u, _d.InterruptStatus & 1);
    }

    [Fact]
    public void Oversized_runt_and_segmentation_frames_are_dropped_and_counted_and_the_device_keeps_working()
    {
        uint huge = (uint)(VirtioNetConstants.HeaderSize + VirtioNet.MaxFrameSize + 1);
        _tx.SetDesc(0, 0x10000, huge);                                  // one byte too many
        _tx.SetDesc(1, 0x10000, VirtioNetConstants.HeaderSize + 13);    // shorter than an Ethernet header
        var gso = new byte[VirtioNetConstants.HeaderSize + 60];
        gso[VirtioNetConstants.HeaderGsoTypeOffset] = 1;                // TCPv4 segmentation, never negotiated
        _rx.Memory.Write(0x38000, gso);
        _tx.SetDesc(2, 0x38000, (uint)gso.Length);
        var good = Frame(60, 9);
        _rx.Memory.Write(0x39000 + VirtioNetConstants.HeaderSize, good);
        _rx.Memory.Write(0x39000, new byte[VirtioNetConstants.HeaderSize]);
        _tx.SetDesc(3, 0x39000, (uint)(VirtioNetConstants.HeaderSize + good.Length));
        for (ushort i = 0; i < 4; i++) _tx.Offer(i);
        _d.Notify(1);
        Assert.Equal(4, _tx.UsedIdx);
        Assert.Equal(3, _net.TxDropped);
        Assert.Equal(good, Assert.Single(_backend.Sent));
        AssertHealthy();
    }

    [Fact]
    public void Received_frames_wait_for_buffers_and_buffers_wait_for_frames()
    {
        _rx.SetDesc(0, 0x20000, 2048, Ring.Write);
        _rx.Offer(0);
        _d.Notify(0);
        Assert.Equal(0, _rx.UsedIdx); // no frame yet: the buffer is held

        var f1 = Frame(64, 1);
        var f2 = Frame(1514, 2);
        _backend.Receive!(f1);
        Assert.Equal(1, _rx.UsedIdx);
        Assert.Equal((0u, (uint)(12 + 64)), _rx.UsedElem(0));
        var header = _rx.Memory.GetReadOnlySpan(0x20000, 12).ToArray();
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 }, header); // nothing offloaded, num_buffers = 1
        Assert.Equal(f1, _rx.Memory.GetReadOnlySpan(0x20000 + 12, 64).ToArray());

        _backend.Receive!(f2); // no buffer: waits
        Assert.Equal(1, _net.PendingFrames);
        // A buffer split in two descriptors: the header and the frame's start, then the rest.
        _rx.SetDesc(1, 0x21000, 100, Ring.Write | Ring.Next, 2);
        _rx.SetDesc(2, Ring.HighBase, 2000, Ring.Write);
        _rx.Offer(1);
        _d.Notify(0);
        Assert.Equal(2, _rx.UsedIdx);
        Assert.Equal((1u, (uint)(12 + 1514)), _rx.UsedElem(1));
        Assert.Equal(f2.AsSpan(0, 88).ToArray(), _rx.Memory.GetReadOnlySpan(0x21000 + 12, 88).ToArray());
        Assert.Equal(f2.AsSpan(88).ToArray(), _rx.Memory.GetReadOnlySpan(Ring.HighBase, 1514 - 88).ToArray());
        Assert.Equal((2L, 64L + 1514), (_net.RxFrames, _net.RxBytes));
        Assert.Equal(0, _net.PendingFrames);
        AssertHealthy();
    }

    [Fact]
    public void A_buffer_too_small_for_the_frame_is_returned_empty_and_the_next_frame_uses_the_next_buffer()
    {
        _rx.SetDesc(0, 0x20000, 50, Ring.Write);
        _rx.SetDesc(1, 0x21000, 2048, Ring.Write);
        _rx.Offer(0);
        _rx.Offer(1);
        _d.Notify(0);
        _backend.Receive!(Frame(100, 1));
        _backend.Receive!(Frame(30, 2));
        Assert.Equal(2, _rx.UsedIdx);
        Assert.Equal((0u, 0u), _rx.UsedElem(0));
        Assert.Equal((1u, 42u), _rx.UsedElem(1));
        Assert.Equal(1, _net.RxDropped);
        AssertHealthy();
    }

    [Fact]
    public void Without_buffers_a_bounded_number_of_frames_waits_and_the_rest_is_dropped()
    {
        for (int i = 0; i < VirtioNet.MaxPendingFrames + 10; i++) _backend.Receive!(Frame(60, (byte)i));
        Assert.Equal(VirtioNet.MaxPendingFrames, _net.PendingFrames);
        Assert.Equal(10, _net.RxDropped);
        // Oversized and runt frames from the backend are refused outright.
        _backend.Receive!(new byte[VirtioNet.MaxFrameSize + 1]);
        _backend.Receive!(new byte[10]);
        Assert.Equal(12, _net.RxDropped);
        // The oldest frames are delivered first once buffers come.
        _rx.SetDesc(0, 0x20000, 2048, Ring.Write);
        _rx.Offer(0);
        _d.Notify(0);
        Assert.Equal(Frame(60, 0), _rx.Memory.GetReadOnlySpan(0x20000 + 12, 60).ToArray());
        Assert.Equal(VirtioNet.MaxPendingFrames - 1, _net.PendingFrames);
    }

    [Fact]
    public void Reset_forgets_waiting_frames_and_frames_after_reset_touch_nothing()
    {
        _backend.Receive!(Frame(60, 1));
        Assert.Equal(1, _net.PendingFrames);
        _d.Write(VirtioMmioRegisters.Status, 0);
        Assert.Equal(0, _net.PendingFrames);
        _backend.Receive!(Frame(60, 2));
        Assert.Equal(0, _net.PendingFrames);
        Assert.Equal(0, _rx.UsedIdx);
        Assert.Equal(1, _net.RxDropped);
    }

    [Fact]
    public void A_hostile_receive_buffer_outside_ram_parks_the_device_without_throwing_on_the_backend_thread()
    {
        _rx.SetDesc(0, Ring.HoleStart, 2048, Ring.Write); // in the hole between the RAM regions
        _rx.Offer(0);
        _d.Notify(0);
        var t = new Thread(() => _backend.Receive!(Frame(60, 1)));
        t.Start();
        t.Join();
        Assert.NotEqual(0u, (uint)(_d.Status & VirtioStatus.DeviceNeedsReset));
        Assert.Equal(0, _rx.UsedIdx);
        // A new driver bring-up works again.
        Assert.True(_d.Negotiate(_d.DeviceFeatures()));
    }

    [Fact]
    public void A_device_readable_descriptor_in_the_receive_queue_gets_no_data()
    {
        _rx.SetDesc(0, 0x20000, 2048); // not WRITE: the device may not write it
        _rx.Offer(0);
        _d.Notify(0);
        _rx.Memory.Write(0x20000, new byte[16]);
        _backend.Receive!(Frame(60, 1));
        Assert.Equal((0u, 0u), _rx.UsedElem(0));
        Assert.Equal(new byte[16], _rx.Memory.GetReadOnlySpan(0x20000, 16).ToArray());
        Assert.Equal(1, _net.RxDropped);
        AssertHealthy();
    }

    [Fact]
    public void Link_down_is_shown_to_the_driver_with_a_config_interrupt_and_stops_traffic()
    {
        _d.Ack(_d.InterruptStatus);
        _net.LinkUp = false;
        Assert.NotEqual(0u, _d.InterruptStatus & 2); // configuration change
        var status = new byte[4];
        _d.Transport.Read(VirtioMmioRegisters.Config + 4, status);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(status.AsSpan(2)));
        _backend.Receive!(Frame(60, 1));
        Assert.Equal(0, _net.PendingFrames);
        _rx.Memory.Write(0x10000, new byte[12 + 60]);
        _tx.SetDesc(0, 0x10000, 72);
        _tx.Offer(0);
        _d.Notify(1);
        Assert.Empty(_backend.Sent);
        Assert.Equal((1L, 1L), (_net.RxDropped, _net.TxDropped));
        _net.LinkUp = true;
        _d.Transport.Read(VirtioMmioRegisters.Config + 4, status);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(status.AsSpan(2)));
    }

    [Fact]
    public void Dispose_disposes_the_backend()
    {
        _net.Dispose();
        Assert.True(_backend.Disposed);
    }

    [Theory]
    [InlineData("52:54:00:12:34:56", true)]
    [InlineData("02:00:00:00:00:01", true)]
    [InlineData("01:00:5e:00:00:01", false)] // multicast
    [InlineData("52:54:00:12:34", false)]
    [InlineData("52:54:00:12:34:5g", false)]
    [InlineData("525400123456", false)]
    public void Mac_addresses_parse_or_fail_clearly(string text, bool ok)
    {
        if (ok) Assert.Equal(text, MacAddress.Parse(text).ToString());
        else Assert.Contains("MAC address", Assert.ThrowsAny<SharpVmm.Core.VmmException>(() => MacAddress.Parse(text)).Message);
    }

    [Fact]
    public void Random_macs_are_unicast_in_the_qemu_range()
    {
        var m = MacAddress.Random().ToArray();
        Assert.Equal(new byte[] { 0x52, 0x54, 0x00 }, m[..3]);
    }
}
