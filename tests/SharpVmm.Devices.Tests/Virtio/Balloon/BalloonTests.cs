using System.Buffers.Binary;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Balloon;
using R = SharpVmm.Devices.Virtio.VirtioMmioRegisters;

namespace SharpVmm.Devices.Tests.Virtio.Balloon;

public sealed class BalloonTests : IDisposable
{
    private const ulong PfnArray = 0xA000, StatsBuffer = 0xB000;
    private readonly Ring _inflate = new(8);
    private readonly Ring _deflate, _stats;
    private readonly LevelLine _irq = new();
    private readonly VirtioBalloon _balloon;
    private readonly MmioDriver _d;

    public BalloonTests()
    {
        _deflate = new Ring(8, _inflate.Memory, 0x4000, 0x5000, 0x6000);
        _stats = new Ring(8, _inflate.Memory, 0x7000, 0x8000, 0x9000);
        _balloon = new VirtioBalloon(_inflate.Memory);
        _d = new MmioDriver(new VirtioMmioTransport(_balloon, _inflate.Memory, _irq));
    }

    public void Dispose() => _inflate.Dispose();

    private void BringUp(ulong? features = null)
    {
        Assert.True(_d.Negotiate(features ?? _d.DeviceFeatures()));
        _d.SetupQueue(0, 8, _inflate.DescAt, _inflate.AvailAt, _inflate.UsedAt);
        _d.SetupQueue(1, 8, _deflate.DescAt, _deflate.AvailAt, _deflate.UsedAt);
        _d.SetupQueue(2, 8, _stats.DescAt, _stats.AvailAt, _stats.UsedAt);
        _d.SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
        Assert.True(_balloon.DriverActive);
    }

    private void Send(Ring ring, uint queue, params uint[] pfns)
    {
        var bytes = new byte[pfns.Length * 4];
        for (int i = 0; i < pfns.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 4), pfns[i]);
        _inflate.Memory.Write(PfnArray, bytes);
        ring.SetDesc(0, PfnArray, (uint)bytes.Length);
        ring.Offer(0);
        _d.Notify(queue);
    }

    private void WriteActual(uint pages) => _d.Write(R.Config + 4, pages);

    [Fact]
    public void Announces_itself_as_device_5_with_the_stats_queue_and_an_8_byte_config()
    {
        Assert.Equal(5u, _d.Read(R.DeviceId));
        ulong f = _d.DeviceFeatures();
        Assert.NotEqual(0UL, f & (1UL << VirtioBalloon.StatsVqBit));
        Assert.Equal(0UL, f & (1UL << VirtioBalloon.DeflateOnOomBit)); // only when asked: it keeps MemTotal unchanged
        Assert.NotEqual(0UL, new VirtioBalloon(_inflate.Memory, deflateOnOom: true).Features & (1UL << VirtioBalloon.DeflateOnOomBit));
        _d.Write(R.QueueSel, 2);
        Assert.Equal(VirtioBalloon.QueueSize, (ushort)_d.Read(R.QueueNumMax));
        _d.Write(R.QueueSel, 3);
        Assert.Equal(0u, _d.Read(R.QueueNumMax));
        Assert.Equal(0u, _d.Read(R.Config + 8)); // past the config space
    }

    [Fact]
    public void The_target_reaches_the_driver_with_a_config_interrupt_and_actual_comes_back()
    {
        _balloon.SetTargetPages(7); // before any driver: read at probe
        Assert.Equal(7u, _d.Read(R.Config));
        BringUp();
        uint gen = _d.Read(R.ConfigGeneration);
        _balloon.SetTargetPages(0x1234);
        Assert.Equal(0x1234u, _d.Read(R.Config));
        Assert.NotEqual(gen, _d.Read(R.ConfigGeneration));
        Assert.True(_irq.High);
        Assert.Equal(VirtioMmioTransport.InterruptConfigChange, _d.InterruptStatus & VirtioMmioTransport.InterruptConfigChange);

        var seen = new List<uint>();
        _balloon.ActualChanged += seen.Add;
        WriteActual(0x1234);
        WriteActual(0x1234); // unchanged: no second event
        _d.Write(R.Config, 99); // num_pages is the device's: the driver cannot change it
        Assert.Equal(0x1234u, _balloon.ActualPages);
        Assert.Equal(0x1234u, _balloon.TargetPages);
        Assert.Equal([0x1234u], seen);
        Assert.Equal(0x1234u, _d.Read(R.Config + 4));
    }

    [Fact]
    public void Inflating_gives_the_pages_back_to_the_host_and_the_guest_then_reads_zeros()
    {
        BringUp();
        var mem = _inflate.Memory;
        for (ulong p = 0x20; p < 0x30; p++) mem.Write(p << 12, 0xA5A5_A5A5_A5A5_A5A5UL);
        mem.Write(0x30UL << 12, 0x1111UL); // a neighbour that stays
        mem.Write(Ring.HighBase, 0x2222UL);
        ulong residentBefore = mem.ResidentBytes();

        // Pages 0x20..0x2f in a scrambled order with one duplicate, and a page of the second region.
        Send(_inflate, 0, 0x21, 0x20, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x24, (uint)(Ring.HighBase >> 12));
        ulong residentAfter = mem.ResidentBytes(); // before reading them back: a read maps the zero page
        // The 17 pages left; the request touched at most 4 others (descriptor table, avail and used rings, PFN array).
        Assert.True(residentAfter + 13 * 4096UL <= residentBefore, $"resident {residentAfter} was {residentBefore}");
        Assert.Equal(1, _inflate.UsedIdx);
        Assert.Equal((0u, 0u), _inflate.UsedElem(0));
        Assert.Equal(17UL, _balloon.InflatedPages);
        Assert.Equal(0L, _balloon.RefusedPfns);
        for (ulong p = 0x20; p < 0x30; p++) Assert.Equal(0UL, mem.Read<ulong>(p << 12));
        Assert.Equal(0UL, mem.Read<ulong>(Ring.HighBase));
        Assert.Equal(0x1111UL, mem.Read<ulong>(0x30UL << 12));

        // Deflate: the pages leave the balloon (the driver owns them again); unknown ones are ignored.
        Send(_deflate, 1, 0x20, 0x21, 0x35);
        Assert.Equal(1, _deflate.UsedIdx);
        Assert.Equal(15UL, _balloon.InflatedPages);
        Assert.Equal(VirtioStatus.None, _d.Status & VirtioStatus.DeviceNeedsReset);
    }

    [Fact]
    public void Hostile_pfns_are_refused_and_nothing_outside_ram_is_touched()
    {
        BringUp();
        var mem = _inflate.Memory;
        mem.Write(0x3FUL << 12, 0x77UL);
        // In the hole, just past the end, the largest PFN, and one in RAM among them.
        Send(_inflate, 0, (uint)(Ring.HoleStart >> 12), (uint)(Ring.HighEnd >> 12), uint.MaxValue, 0x3F, (uint)((Ring.HighBase >> 12) - 1));
        Assert.Equal(1, _inflate.UsedIdx);
        Assert.Equal(4L, _balloon.RefusedPfns);
        Assert.Equal(1UL, _balloon.InflatedPages);
        Assert.Equal(0UL, mem.Read<ulong>(0x3FUL << 12));
        Assert.Equal(VirtioStatus.None, _d.Status & VirtioStatus.DeviceNeedsReset);

        // A PFN buffer that is not guest RAM is the virtqueue's to refuse: the device needs a reset, the host lives on.
        _inflate.SetDesc(1, Ring.HoleStart, 4096);
        _inflate.Offer(1);
        _d.Notify(0);
        Assert.Equal(VirtioStatus.DeviceNeedsReset, _d.Status & VirtioStatus.DeviceNeedsReset);
        _d.Write(R.Status, 0);
        Assert.Equal(0UL, _balloon.InflatedPages); // a reset driver starts with an empty balloon
    }

    [Fact]
    public void A_huge_pfn_array_is_capped_per_request()
    {
        BringUp();
        // 0x30000 bytes of zeros = 0xC000 PFNs of page 0: all the same page, counted once, the request completes.
        _inflate.SetDesc(0, 0x10000, 0x30000);
        _inflate.Offer(0);
        _d.Notify(0);
        Assert.Equal(1, _inflate.UsedIdx);
        Assert.Equal(1UL, _balloon.InflatedPages);
    }

    [Fact]
    public void The_stats_buffer_is_held_parsed_and_returned_on_request()
    {
        Assert.False(_balloon.RequestStats()); // no driver
        BringUp();
        Assert.False(_balloon.RequestStats()); // nothing posted yet
        var mem = _inflate.Memory;
        void Post(ulong free, ulong total)
        {
            var b = new byte[30];
            BinaryPrimitives.WriteUInt16LittleEndian(b, BalloonStat.FreeMemory);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(2), free);
            BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(10), BalloonStat.TotalMemory);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(12), total);
            BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(20), 42); // a tag from a newer driver
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(22), 7);
            mem.Write(StatsBuffer, b);
            _stats.SetDesc(0, StatsBuffer, 30);
            _stats.Offer(0);
            _d.Notify(2);
        }
        Post(100 << 20, 200 << 20);
        Assert.Equal(0, _stats.UsedIdx); // held, not returned
        var (stats, updated) = _balloon.LastStats;
        Assert.NotNull(updated);
        Assert.Equal(100UL << 20, stats["stat-free-memory"]);
        Assert.Equal(200UL << 20, stats["stat-total-memory"]);
        Assert.Equal(7UL, stats["stat-tag-42"]);

        _irq.High = false;
        Assert.True(_balloon.RequestStats());
        Assert.Equal(1, _stats.UsedIdx);
        Assert.Equal((0u, 0u), _stats.UsedElem(0));
        Assert.True(_irq.High);
        Assert.False(_balloon.RequestStats()); // already returned

        Post(50 << 20, 200 << 20);
        Assert.Equal(50UL << 20, _balloon.LastStats.Stats["stat-free-memory"]);
    }

    [Fact]
    public void Without_the_stats_feature_no_buffer_is_requested()
    {
        BringUp(VirtioFeatures.Version1);
        Assert.False(_balloon.RequestStats());
        Send(_inflate, 0, 0x25);
        Assert.Equal(1UL, _balloon.InflatedPages);
    }

    [Fact]
    public void A_stats_buffer_kicked_before_DRIVER_OK_is_taken_at_DRIVER_OK()
    {
        // Linux's probe posts the first stats buffer and kicks before it sets DRIVER_OK.
        Assert.True(_d.Negotiate(_d.DeviceFeatures()));
        _d.SetupQueue(0, 8, _inflate.DescAt, _inflate.AvailAt, _inflate.UsedAt);
        _d.SetupQueue(1, 8, _deflate.DescAt, _deflate.AvailAt, _deflate.UsedAt);
        _d.SetupQueue(2, 8, _stats.DescAt, _stats.AvailAt, _stats.UsedAt);
        var b = new byte[10];
        BinaryPrimitives.WriteUInt16LittleEndian(b, BalloonStat.AvailableMemory);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(2), 12345);
        _inflate.Memory.Write(StatsBuffer, b);
        _stats.SetDesc(0, StatsBuffer, 10);
        _stats.Offer(0);
        _d.Notify(2); // ignored: not DRIVER_OK yet
        Assert.Null(_balloon.LastStats.Updated);
        _d.SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
        Assert.Equal(12345UL, _balloon.LastStats.Stats["stat-available-memory"]);
        Assert.True(_balloon.RequestStats());
    }
}
