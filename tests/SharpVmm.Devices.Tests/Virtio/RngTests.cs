using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Rng;

namespace SharpVmm.Devices.Tests.Virtio;

public sealed class RngTests
{
    [Fact]
    public void Fills_every_writable_buffer_and_reports_the_length()
    {
        using var ring = new Ring();
        var d = new MmioDriver(new VirtioMmioTransport(new VirtioRng(), ring.Memory, new LevelLine()));
        Assert.Equal(4u, d.Read(VirtioMmioRegisters.DeviceId));
        d.BringUp(ring);
        ring.SetDesc(0, 0x10000, 100, Ring.Write | Ring.Next, 1);
        ring.SetDesc(1, Ring.HighBase, 4000, Ring.Write);
        ring.SetDesc(2, 0x14000, 32, Ring.Write);
        ring.Offer(0);
        ring.Offer(2);
        d.Notify(0);
        Assert.Equal(2, ring.UsedIdx);
        Assert.Equal((0u, 4100u), ring.UsedElem(0));
        Assert.Equal((2u, 32u), ring.UsedElem(1));
        // 4000 random bytes are all zero with probability 2^-32000.
        Assert.Contains(ring.Memory.GetReadOnlySpan(Ring.HighBase, 4000).ToArray(), b => b != 0);
        Assert.Contains(ring.Memory.GetReadOnlySpan(0x14000, 32).ToArray(), b => b != 0);
        Assert.Equal(0, ring.Memory.Read<byte>(0x14000 + 32)); // nothing past the buffer
        Assert.Equal(2, ring.AvailEvent); // EVENT_IDX: asks to be notified for the next one
    }

    [Fact]
    public void Caps_one_request_and_ignores_readable_buffers()
    {
        using var ring = new Ring();
        var d = new MmioDriver(new VirtioMmioTransport(new VirtioRng(), ring.Memory, new LevelLine()));
        d.BringUp(ring);
        ring.SetDesc(0, 0x10000, 16, Ring.Next, 1);
        ring.SetDesc(1, 0x20000, 0x20000, Ring.Write);
        ring.Offer(0);
        d.Notify(0);
        Assert.Equal((0u, (uint)VirtioRng.MaxBytesPerRequest), ring.UsedElem(0));
        Assert.Equal(0UL, ring.Memory.Read<ulong>(0x10000));
    }
}
