using System.Diagnostics;
using SharpVmm.Block;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Blk;
using SharpVmm.Devices.Virtio.Rng;
using Xunit.Abstractions;

namespace SharpVmm.Devices.Tests.Virtio;

/// <summary>
/// Steady-state requests through the transport allocate nothing in the virtio layer. Measured with
/// <see cref="AllocationMeter"/>: what the runtime allocates once on the thread (tiering, lazy set-up) is not the
/// device's and must not fail the test; an allocation per request shows in every batch.
/// </summary>
public sealed class HotPathTests(ITestOutputHelper output)
{
    private static void Cycle(Ring ring, MmioDriver d, ushort head)
    {
        ring.Offer(head);
        d.Notify(0);
    }

    [Fact]
    public void Rng_requests_allocate_nothing()
    {
        using var ring = new Ring(16);
        var d = new MmioDriver(new VirtioMmioTransport(new VirtioRng(), ring.Memory, new LevelLine()));
        d.BringUp(ring);
        ring.SetDesc(0, 0x10000, 8, Ring.Write | Ring.Next, 1);
        ring.SetDesc(1, 0x11000, 8, Ring.Write);
        for (int i = 0; i < 100; i++) Cycle(ring, d, 0);
        const int n = 4000, batches = 5;
        int done = 100;
        long t0 = Stopwatch.GetTimestamp();
        long allocated = AllocationMeter.LeastBytesPerBatch(() =>
        {
            for (int i = 0; i < n; i++) Cycle(ring, d, 0);
            done += n;
        }, batches);
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        output.WriteLine($"virtio-rng: {(done - 100) / seconds:F0} requests/s (16 bytes each, notify per request), {allocated} bytes allocated in the cleanest batch of {n}");
        Assert.Equal(0, allocated);
        Assert.Equal(unchecked((ushort)done), ring.UsedIdx);
    }

    [Fact]
    public void Blk_reads_allocate_nothing_in_the_virtio_layer()
    {
        string dir = Directory.CreateTempSubdirectory("sharpvmm-vblk-hot-").FullName;
        try
        {
            using var ring = new Ring(16);
            using var image = ImageFactory.Create(Path.Combine(dir, "d.raw"), "raw", 1 << 20);
            var d = new MmioDriver(new VirtioMmioTransport(new VirtioBlk(image), ring.Memory, new LevelLine()));
            d.BringUp(ring);
            ring.Memory.Write(0x10000, VirtioBlkConstants.TypeIn);
            ring.Memory.Write(0x10008, 8UL);
            ring.SetDesc(0, 0x10000, 16, Ring.Next, 1);
            ring.SetDesc(1, 0x11000, 4096, Ring.Write | Ring.Next, 2);
            ring.SetDesc(2, 0x12000, 1, Ring.Write);
            for (int i = 0; i < 100; i++) Cycle(ring, d, 0);
            const int n = 4000;
            long t0 = Stopwatch.GetTimestamp();
            long allocated = AllocationMeter.LeastBytesPerBatch(() =>
            {
                for (int i = 0; i < n; i++) Cycle(ring, d, 0);
            });
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            output.WriteLine($"virtio-blk raw 4 KiB reads: {allocated / (double)n:F1} bytes allocated per request in the cleanest batch of {n} ({seconds:F2} s)");
            Assert.Equal(0, ring.Memory.Read<byte>(0x12000));
            Assert.Equal(0, allocated);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
