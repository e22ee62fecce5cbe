using SharpVmm.Core.State;
using SharpVmm.Devices.Tests.Virtio;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Rng;
using R = SharpVmm.Devices.Virtio.VirtioMmioRegisters;

namespace SharpVmm.Devices.Tests.State;

public sealed class VirtioStateTests
{
    [Fact]
    public void A_restored_transport_serves_the_next_request_where_the_ring_left_off()
    {
        using var ring = new Ring();
        var line = new LevelLine();
        var a = new MmioDriver(new VirtioMmioTransport(new VirtioRng(), ring.Memory, line));
        a.BringUp(ring);
        ring.SetDesc(0, 0x10000, 64, Ring.Write);
        ring.Offer(0);
        a.Notify(0);
        Assert.Equal(1, ring.UsedIdx);
        Assert.True(line.High);
        a.Write(R.QueueSel, 0);

        // A new VM: same RAM contents (the snapshot carries them), fresh device and transport.
        using var ring2 = new Ring();
        ring2.Memory.Write(0, ring.Memory.GetReadOnlySpan(0, (int)Ring.RamEnd));
        var line2 = new LevelLine();
        var rng2 = new VirtioRng();
        var b = new MmioDriver(new VirtioMmioTransport(rng2, ring2.Memory, line2));
        DeviceStateTests.Copy(a.Transport.Device as IStateful ?? throw new InvalidOperationException(), rng2);
        DeviceStateTests.Copy(a.Transport, b.Transport);

        Assert.Equal(a.Status, b.Status);
        Assert.Equal(a.Transport.DriverFeatures, b.Transport.DriverFeatures);
        Assert.True(line2.High);                       // the unacknowledged interrupt is still there
        Assert.Equal(VirtioMmioTransport.InterruptUsedBuffer, b.InterruptStatus);
        Assert.Equal(1u, b.Read(R.QueueReady));
        Assert.Equal(1, b.Transport.Queues[0].LastAvailIndex);
        b.Ack(VirtioMmioTransport.InterruptUsedBuffer);
        Assert.False(line2.High);

        // The driver's next buffer lands in used slot 1, not slot 0 again.
        ring2.SetDesc(1, 0x11000, 32, Ring.Write);
        ring2.Memory.Write<ushort>(Ring.Avail + 4 + 2 * 1, 1);
        ring2.SetAvailIdx(2);
        b.Notify(0);
        Assert.Equal(2, ring2.UsedIdx);
        Assert.Equal((1u, 32u), ring2.UsedElem(1));
        Assert.Contains(ring2.Memory.GetReadOnlySpan(0x11000, 32).ToArray(), x => x != 0);

        DeviceStateTests.TruncationsAreRefused(a.Transport, () => new VirtioMmioTransport(new VirtioRng(), ring2.Memory, new LevelLine()));
    }

    [Fact]
    public void A_saved_queue_outside_this_vms_ram_is_refused()
    {
        using var ring = new Ring();
        var a = new MmioDriver(new VirtioMmioTransport(new VirtioRng(), ring.Memory, new LevelLine()));
        a.Negotiate(a.DeviceFeatures());
        a.SetupQueue(0, ring.Size, desc: Ring.HighBase, avail: Ring.HighBase + 0x1000, used: Ring.HighBase + 0x2000);
        a.SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
        using var small = SharpVmm.Memory.GuestMemory.Create([(0UL, Ring.RamEnd)]);
        var b = new VirtioMmioTransport(new VirtioRng(), small, new LevelLine());
        var w = new StateWriter();
        a.Transport.SaveState(w);
        var e = Assert.Throws<StateFormatException>(() => b.LoadState(new StateReader(w.ToArray()), 1));
        Assert.Contains("not inside guest RAM", e.Message);
    }
}
