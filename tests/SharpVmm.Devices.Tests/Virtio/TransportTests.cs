using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Rng;
using R = SharpVmm.Devices.Virtio.VirtioMmioRegisters;

namespace SharpVmm.Devices.Tests.Virtio;

public sealed class TransportTests
{
    private sealed class Recorder : IVirtioDevice
    {
        public int Activations, Resets, Notifies;
        public byte[] Config = [1, 2, 3, 4, 5, 6];
        public VirtioDeviceContext? Context;
        public uint DeviceId => 42;
        public ulong Features => VirtioFeatures.Version1 | VirtioFeatures.EventIdx | 1UL << 3;
        public int QueueCount => 2;
        public ushort MaxQueueSize(int queue) => queue == 0 ? (ushort)8 : (ushort)16;
        public int ConfigSize => Config.Length;
        public void ReadConfig(int offset, Span<byte> data) => Config.AsSpan(offset, data.Length).CopyTo(data);
        public void WriteConfig(int offset, ReadOnlySpan<byte> data) => data.CopyTo(Config.AsSpan(offset));
        public void Activate(VirtioDeviceContext context) { Activations++; Context = context; }
        public void Reset() { Resets++; Context = null; }
        public void QueueNotify(int queue) { Notifies++; if (queue == 1) throw new InvalidOperationException("device bug"); }
    }

    private static (MmioDriver, Recorder, LevelLine, Ring) Make()
    {
        var ring = new Ring();
        var dev = new Recorder();
        var line = new LevelLine();
        return (new MmioDriver(new VirtioMmioTransport(dev, ring.Memory, line)), dev, line, ring);
    }

    [Fact]
    public void Identification_registers()
    {
        var (d, _, _, ring) = Make();
        using var _r = ring;
        Assert.Equal(0x74726976u, d.Read(R.MagicValue));
        Assert.Equal(2u, d.Read(R.Version));
        Assert.Equal(42u, d.Read(R.DeviceId));
        Assert.Equal(R.SharpVmmVendor, d.Read(R.VendorId));
        Assert.Equal(VirtioFeatures.Version1 | VirtioFeatures.EventIdx | 8, d.DeviceFeatures());
        d.Write(R.DeviceFeaturesSel, 2);
        Assert.Equal(0u, d.Read(R.DeviceFeatures));
        d.Write(R.QueueSel, 1);
        Assert.Equal(16u, d.Read(R.QueueNumMax));
        d.Write(R.QueueSel, 2);
        Assert.Equal(0u, d.Read(R.QueueNumMax));
        Assert.Equal(uint.MaxValue, d.Read(R.ShmLenLow));
    }

    [Fact]
    public void Config_space_is_byte_granular()
    {
        var (d, dev, _, ring) = Make();
        using var _r = ring;
        Span<byte> b = stackalloc byte[2];
        d.Transport.Read(R.Config + 3, b);
        Assert.Equal([4, 5], b.ToArray());
        d.Transport.Read(R.Config + 5, b); // runs past the end: the rest reads 0
        Assert.Equal([6, 0], b.ToArray());
        d.Transport.Write(R.Config + 1, [0xEE]);
        Assert.Equal(0xEE, dev.Config[1]);
        d.Transport.Write(R.Config + 0x80, [0xEE]); // past the config: ignored
    }

    [Fact]
    public void Features_ok_is_refused_for_unoffered_features_or_without_version_1()
    {
        var (d, _, _, ring) = Make();
        using var _r = ring;
        Assert.False(d.Negotiate(VirtioFeatures.Version1 | 1UL << 4));
        Assert.False(d.Negotiate(1UL << 3)); // legacy interface only: not supported
        Assert.True(d.Negotiate(VirtioFeatures.Version1 | 1UL << 3));
        Assert.Equal(VirtioFeatures.Version1 | 8, d.Transport.DriverFeatures);
        d.WriteDriverFeatures(VirtioFeatures.Version1); // frozen after FEATURES_OK
        Assert.Equal(VirtioFeatures.Version1 | 8, d.Transport.DriverFeatures);
    }

    [Fact]
    public void Features_ok_needs_driver_and_driver_ok_needs_features_ok()
    {
        var (d, dev, _, ring) = Make();
        using var _r = ring;
        d.SetStatus(VirtioStatus.Acknowledge);
        d.WriteDriverFeatures(VirtioFeatures.Version1);
        d.SetStatus(VirtioStatus.Acknowledge | VirtioStatus.FeaturesOk);
        Assert.Equal(VirtioStatus.Acknowledge, d.Status);
        d.SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.DriverOk);
        Assert.Equal(VirtioStatus.Acknowledge | VirtioStatus.Driver, d.Status);
        Assert.Equal(0, dev.Activations);
    }

    [Fact]
    public void Driver_ok_activates_with_ready_queues_and_reset_undoes_everything()
    {
        var (d, dev, line, ring) = Make();
        using var _r = ring;
        d.BringUp(ring);
        Assert.Equal(1, dev.Activations);
        Assert.True(dev.Context!.Queues[0].IsActive);
        Assert.False(dev.Context.Queues[1].IsActive);
        Assert.True(dev.Context.HasFeature(VirtioFeatures.EventIdxBit));
        d.Write(R.QueueSel, 0);
        Assert.Equal(1u, d.Read(R.QueueReady));

        d.Notify(0);
        Assert.Equal(1, dev.Notifies);
        d.Notify(7); // no such queue: ignored
        Assert.Equal(1, dev.Notifies);

        dev.Context.SignalConfigChange();
        Assert.True(line.High);
        Assert.Equal(1u, d.Read(R.ConfigGeneration));

        d.Write(R.Status, 0);
        Assert.Equal(1, dev.Resets);
        Assert.Equal(VirtioStatus.None, d.Status);
        Assert.Equal(0u, d.Read(R.QueueReady));
        Assert.Equal(0u, d.InterruptStatus);
        Assert.False(line.High);
        Assert.Equal(0UL, d.Transport.DriverFeatures);
    }

    [Fact]
    public void Queue_registers_are_frozen_while_ready_and_queue_ready_0_stops_it()
    {
        var (d, _, _, ring) = Make();
        using var _r = ring;
        d.BringUp(ring);
        var q = d.Transport.Queues[0];
        d.Write(R.QueueSel, 0);
        d.Write(R.QueueDescLow, 0x5000);
        Assert.Equal(Ring.Desc, q.DescTableAddress);
        d.Write(R.QueueReady, 0);
        Assert.Equal(0u, d.Read(R.QueueReady));
        Assert.False(q.IsActive);
    }

    [Fact]
    public void Queue_ready_with_a_bad_layout_sets_needs_reset_and_interrupts()
    {
        var (d, _, line, ring) = Make();
        using var _r = ring;
        Assert.True(d.Negotiate(VirtioFeatures.Version1));
        d.SetupQueue(0, 8, desc: Ring.HighEnd); // outside RAM
        Assert.True((d.Status & VirtioStatus.DeviceNeedsReset) != 0);
        Assert.Equal(VirtioMmioTransport.InterruptConfigChange, d.InterruptStatus);
        Assert.True(line.High);
        Assert.Equal(VirtqueueError.AddressOutsideRam, Assert.IsType<VirtqueueException>(d.Transport.LastError).Error);
        d.Ack(VirtioMmioTransport.InterruptConfigChange);
        Assert.False(line.High);
        Assert.True(d.Negotiate(VirtioFeatures.Version1)); // reset clears it
        Assert.Equal(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk, d.Status);
    }

    [Fact]
    public void A_device_exception_becomes_needs_reset_not_a_bus_fault()
    {
        var (d, dev, line, ring) = Make();
        using var _r = ring;
        d.BringUp(ring);
        d.SetupQueue(1, 16, 0x4000, 0x5000, 0x6000);
        d.Notify(1);
        Assert.Equal(1, dev.Notifies);
        Assert.True((d.Status & VirtioStatus.DeviceNeedsReset) != 0);
        Assert.True(line.High);
        d.Notify(0); // a broken device is not notified again until reset
        Assert.Equal(1, dev.Notifies);
        d.SetStatus(d.Status | VirtioStatus.Failed);
        Assert.True((d.Status & VirtioStatus.Failed) != 0);
    }

    [Fact]
    public void Non_32_bit_register_accesses_are_ignored()
    {
        var (d, _, _, ring) = Make();
        using var _r = ring;
        Span<byte> two = stackalloc byte[2];
        d.Transport.Read(R.MagicValue, two);
        Assert.Equal([0, 0], two.ToArray());
        d.Transport.Write(R.Status, [1]);
        Assert.Equal(VirtioStatus.None, d.Status);
    }

    [Fact]
    public void Used_buffer_interrupt_is_level_until_acknowledged()
    {
        using var ring = new Ring();
        var line = new LevelLine();
        var d = new MmioDriver(new VirtioMmioTransport(new VirtioRng(), ring.Memory, line));
        d.BringUp(ring, VirtioFeatures.Version1);
        ring.SetDesc(0, 0x10000, 64, Ring.Write);
        ring.Offer(0);
        d.Notify(0);
        Assert.Equal(VirtioMmioTransport.InterruptUsedBuffer, d.InterruptStatus);
        Assert.True(line.High);
        d.Ack(VirtioMmioTransport.InterruptUsedBuffer);
        Assert.False(line.High);
        Assert.Equal(0u, d.InterruptStatus);
    }
}

public sealed class LayoutTests
{
    [Fact]
    public void Slots_are_distinct_pages_in_the_mmio_hole_on_free_ioapic_pins()
    {
        var seen = new HashSet<ulong>();
        for (int i = 0; i < SharpVmm.Core.Platform.PcLayout.VirtioMmioSlots; i++)
        {
            var (b, gsi) = SharpVmm.Core.Platform.PcLayout.VirtioMmioSlot(i);
            Assert.True(b >= SharpVmm.Memory.MemoryLayout.MmioHoleStart && b + VirtioMmioRegisters.WindowSize <= 0xFEC0_0000);
            Assert.InRange(gsi, 16, 23);
            Assert.True(seen.Add(b));
        }
        Assert.Throws<SharpVmm.Core.ConfigurationException>(() => SharpVmm.Core.Platform.PcLayout.VirtioMmioSlot(SharpVmm.Core.Platform.PcLayout.VirtioMmioSlots));
    }

    [Fact]
    public void Transport_sits_on_the_io_bus()
    {
        using var ring = new Ring();
        var bus = new SharpVmm.Devices.Bus.IoBus();
        var (b, _) = SharpVmm.Core.Platform.PcLayout.VirtioMmioSlot(0);
        bus.RegisterMmio(b, VirtioMmioRegisters.WindowSize,
            new VirtioMmioTransport(new SharpVmm.Devices.Virtio.Rng.VirtioRng(), ring.Memory, new LevelLine()), "virtio-rng");
        Span<byte> v = stackalloc byte[4];
        bus.MmioRead(b, v);
        Assert.Equal("virt"u8.ToArray(), v.ToArray());
        bus.MmioRead(b + VirtioMmioRegisters.DeviceId, v);
        Assert.Equal(4, v[0]);
    }
}

public sealed class ConcurrencyTests
{
    [Fact]
    public async Task Interrupt_status_is_readable_while_another_vcpu_is_inside_the_device()
    {
        using var ring = new Ring();
        var gate = new ManualResetEventSlim();
        var entered = new ManualResetEventSlim();
        var dev = new BlockingDevice(gate, entered);
        var line = new LevelLine();
        var t = new VirtioMmioTransport(dev, ring.Memory, line);
        var d = new MmioDriver(t);
        d.BringUp(ring);
        dev.Context!.SignalConfigChange();
        var worker = Task.Run(() => d.Notify(0));
        Assert.True(entered.Wait(TimeSpan.FromSeconds(10)));
        uint status = await Task.Run(() => d.InterruptStatus).WaitAsync(TimeSpan.FromSeconds(5)); // throws if it blocked
        Assert.Equal(VirtioMmioTransport.InterruptConfigChange, status);
        gate.Set();
        await worker.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private sealed class BlockingDevice(ManualResetEventSlim gate, ManualResetEventSlim entered) : IVirtioDevice
    {
        public VirtioDeviceContext? Context;
        public uint DeviceId => 99;
        public ulong Features => VirtioFeatures.Version1;
        public int QueueCount => 1;
        public ushort MaxQueueSize(int queue) => 8;
        public int ConfigSize => 0;
        public void ReadConfig(int offset, Span<byte> data) { }
        public void WriteConfig(int offset, ReadOnlySpan<byte> data) { }
        public void Activate(VirtioDeviceContext context) => Context = context;
        public void Reset() => Context = null;
        public void QueueNotify(int queue) { entered.Set(); gate.Wait(TimeSpan.FromSeconds(30)); }
    }
}
