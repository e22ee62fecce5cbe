using SharpVmm.Devices.Virtio;

namespace SharpVmm.Devices.Tests.Virtio;

public sealed class VirtqueueTests
{
    private static VirtqueueError Refused(Ring r, Virtqueue q)
        => Assert.Throws<VirtqueueException>(() => q.TryPop(out _)).Error;

    [Fact]
    public void Pops_a_chain_with_readable_then_writable_buffers_and_publishes_used()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(3, 0x10000, 16, Ring.Next, 5);
        r.SetDesc(5, 0x11000, 512, Ring.Next | Ring.Write, 1);
        r.SetDesc(1, 0x12000, 1, Ring.Write);
        r.Offer(3);
        Assert.True(q.HasAvailable);
        Assert.True(q.TryPop(out var c));
        Assert.Equal(3, c.Head);
        Assert.Equal(1, c.ReadableCount);
        Assert.Equal(16UL, c.ReadableLength);
        Assert.Equal(513UL, c.WritableLength);
        var seen = new List<VirtqDescriptor>();
        foreach (var d in c) seen.Add(d);
        Assert.Equal([new(0x10000, 16, false), new(0x11000, 512, true), new(0x12000, 1, true)], seen);

        r.Memory.Write(0x10000, 0x1122334455667788UL);
        Span<byte> hdr = stackalloc byte[8];
        Assert.Equal(8, c.ReadFrom(0, hdr));
        Assert.Equal(0x1122334455667788UL, BitConverter.ToUInt64(hdr));
        Assert.Equal(2, c.WriteTo(511, [0xAA, 0xBB]));
        Assert.Equal(0xAA, r.Memory.Read<byte>(0x11000 + 511));
        Assert.Equal(0xBB, r.Memory.Read<byte>(0x12000));

        q.AddUsed(c.Head, 513);
        Assert.Equal(1, r.UsedIdx);
        Assert.Equal((3u, 513u), r.UsedElem(0));
        Assert.False(q.TryPop(out _));
    }

    [Fact]
    public void Wraps_around_the_ring_many_times()
    {
        using var r = new Ring(4);
        var q = r.CreateQueue();
        for (int i = 0; i < 70000; i++)
        {
            ushort head = (ushort)(i % 4);
            r.SetDesc(head, 0x10000 + (ulong)head * 0x100, 8, Ring.Write);
            r.Offer(head);
            Assert.True(q.TryPop(out var c));
            Assert.Equal(head, c.Head);
            q.AddUsed(c.Head, (uint)i);
        }
        Assert.Equal(unchecked((ushort)70000), r.UsedIdx);
        Assert.Equal((3u, 69999u), r.UsedElem(69999));
    }

    [Fact]
    public void Indirect_table_is_followed_when_negotiated()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        const ulong table = 0x20000;
        r.SetDesc(0, 0x10000, 16, Ring.Next, 2, table);
        r.SetDesc(2, 0x11000, 4096, Ring.Next | Ring.Write, 1, table);
        r.SetDesc(1, 0x13000, 1, Ring.Write, 0, table);
        r.SetDesc(0, table, 3 * 16, Ring.Indirect);
        r.Offer(0);
        Assert.True(q.TryPop(out var c));
        Assert.Equal(3, c.Descriptors.Length);
        Assert.Equal(0x11000UL, c.Descriptors[1].Address);
        Assert.Equal(4097UL, c.WritableLength);
    }

    [Fact]
    public void Zero_length_descriptors_are_dropped()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, 0xDEAD_0000_0000, 0, Ring.Next, 1); // address never touched
        r.SetDesc(1, 0x10000, 4, Ring.Write);
        r.Offer(0);
        Assert.True(q.TryPop(out var c));
        Assert.Equal(1, c.Descriptors.Length);
    }

    [Fact]
    public void Event_idx_interrupt_only_when_used_event_is_crossed()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetUsedEvent(2); // driver wants an interrupt once used idx passes 2 (i.e. reaches 3)
        for (ushort i = 0; i < 3; i++)
        {
            r.SetDesc(i, 0x10000, 4, Ring.Write);
            r.Offer(i);
            Assert.True(q.TryPop(out var c));
            q.AddUsed(c.Head, 4);
            Assert.Equal(i == 2, q.ShouldInterrupt());
        }
        // A batch that jumps over used_event still interrupts once.
        r.SetUsedEvent(3);
        for (ushort i = 3; i < 6; i++) { r.SetDesc(i, 0x10000, 4, Ring.Write); r.Offer(i); }
        for (int i = 0; i < 3; i++) { Assert.True(q.TryPop(out var c)); q.AddUsed(c.Head, 4); }
        Assert.True(q.ShouldInterrupt());
        Assert.False(q.ShouldInterrupt()); // nothing new since
    }

    [Fact]
    public void Event_idx_avail_event_tells_the_driver_where_to_notify()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, 0x10000, 4, Ring.Write);
        r.Offer(0);
        q.DisableNotifications();
        Assert.Equal(0, r.UsedFlags); // EVENT_IDX: the flag is not used
        Assert.True(q.TryPop(out var c));
        q.AddUsed(c.Head, 0);
        Assert.False(q.EnableNotifications());
        Assert.Equal(1, r.AvailEvent);
        r.SetDesc(1, 0x10000, 4, Ring.Write);
        r.Offer(1);
        Assert.True(q.EnableNotifications()); // raced in: keep going
    }

    [Fact]
    public void Without_event_idx_flags_suppress_both_ways()
    {
        using var r = new Ring();
        var q = r.CreateQueue(VirtioFeatures.Version1);
        q.DisableNotifications();
        Assert.Equal(1, r.UsedFlags);
        Assert.False(q.EnableNotifications());
        Assert.Equal(0, r.UsedFlags);

        r.SetDesc(0, 0x10000, 4, Ring.Write);
        r.Offer(0);
        Assert.True(q.TryPop(out var c));
        q.AddUsed(c.Head, 0);
        r.SetAvailFlags(1); // VRING_AVAIL_F_NO_INTERRUPT
        Assert.False(q.ShouldInterrupt());
        r.Offer(0);
        Assert.True(q.TryPop(out c));
        q.AddUsed(c.Head, 0);
        r.SetAvailFlags(0);
        Assert.True(q.ShouldInterrupt());
    }

    [Fact]
    public void Descriptor_loop_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, 0x10000, 4, Ring.Next, 1);
        r.SetDesc(1, 0x10000, 4, Ring.Next, 0);
        r.Offer(0);
        Assert.Equal(VirtqueueError.DescriptorLoop, Refused(r, q));
    }

    [Fact]
    public void Self_loop_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(4, 0x10000, 4, Ring.Next, 4);
        r.Offer(4);
        Assert.Equal(VirtqueueError.DescriptorLoop, Refused(r, q));
    }

    [Fact]
    public void Chain_longer_than_the_queue_is_refused()
    {
        using var r = new Ring(4);
        var q = r.CreateQueue();
        for (int i = 0; i < 4; i++) r.SetDesc(i, 0x10000, 4, Ring.Next, (ushort)((i + 1) % 4));
        r.Offer(0);
        // Longer than the table means some descriptor comes round again.
        Assert.Equal(VirtqueueError.DescriptorLoop, Refused(r, q));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Out_of_range_indexes_are_refused(bool inHead)
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        if (inHead) r.Offer(8);
        else { r.SetDesc(0, 0x10000, 4, Ring.Next, 0xFFFF); r.Offer(0); }
        Assert.Equal(VirtqueueError.DescriptorIndexOutOfRange, Refused(r, q));
    }

    [Theory]
    [InlineData(Ring.RamEnd - 4, 8u)]             // runs off the end of low RAM into the hole
    [InlineData(Ring.HoleStart + 0x100, 4u)]      // in the hole
    [InlineData(Ring.HighEnd, 1u)]                // past all RAM
    [InlineData(0xFFFF_FFFF_FFFF_FFF0, 0x100u)]   // address + length overflows
    [InlineData(0x1_0000_0000_0000, 16u)]
    public void Buffers_outside_ram_are_refused(ulong addr, uint len)
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, addr, len, Ring.Write);
        r.Offer(0);
        Assert.Equal(VirtqueueError.AddressOutsideRam, Refused(r, q));
    }

    [Fact]
    public void Buffer_in_high_ram_is_accepted()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, Ring.HighBase, 0x10000, Ring.Write);
        r.Offer(0);
        Assert.True(q.TryPop(out var c));
        Assert.Equal(0x10000UL, c.WritableLength);
    }

    [Fact]
    public void Readable_after_writable_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, 0x10000, 4, Ring.Write | Ring.Next, 1);
        r.SetDesc(1, 0x11000, 4);
        r.Offer(0);
        Assert.Equal(VirtqueueError.WrongDirection, Refused(r, q));
    }

    [Fact]
    public void Nested_indirect_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, 0x21000, 16, Ring.Indirect, 0, 0x20000);
        r.SetDesc(0, 0x20000, 16, Ring.Indirect);
        r.Offer(0);
        Assert.Equal(VirtqueueError.BadIndirect, Refused(r, q));
    }

    [Fact]
    public void Indirect_without_the_feature_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue(VirtioFeatures.Version1);
        r.SetDesc(0, 0x20000, 16, Ring.Indirect);
        r.Offer(0);
        Assert.Equal(VirtqueueError.BadIndirect, Refused(r, q));
    }

    [Theory]
    [InlineData(0x20000UL, 0u)]
    [InlineData(0x20000UL, 17u)]
    public void Indirect_table_of_bad_length_is_refused(ulong addr, uint len)
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, addr, len, Ring.Indirect);
        r.Offer(0);
        Assert.Equal(VirtqueueError.BadIndirect, Refused(r, q));
    }

    [Fact]
    public void Indirect_table_outside_ram_or_too_big_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, Ring.RamEnd - 16, 32, Ring.Indirect);
        r.Offer(0);
        Assert.Equal(VirtqueueError.AddressOutsideRam, Refused(r, q));

        using var r2 = new Ring();
        var q2 = r2.CreateQueue();
        r2.SetDesc(0, 0x20000, (Virtqueue.MaxIndirectDescriptors + 1) * 16, Ring.Indirect);
        r2.Offer(0);
        Assert.Equal(VirtqueueError.ChainTooLong, Refused(r2, q2));
    }

    [Fact]
    public void Loop_inside_indirect_table_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, 0x10000, 4, Ring.Next, 1, 0x20000);
        r.SetDesc(1, 0x10000, 4, Ring.Next, 0, 0x20000);
        r.SetDesc(0, 0x20000, 32, Ring.Indirect);
        r.Offer(0);
        Assert.Equal(VirtqueueError.DescriptorLoop, Refused(r, q));
    }

    [Fact]
    public void Avail_index_jump_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetAvailIdx(9);
        Assert.Equal(VirtqueueError.AvailIndexJump, Refused(r, q));
    }

    [Fact]
    public void Head_offered_twice_before_use_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        r.SetDesc(0, 0x10000, 4, Ring.Write);
        r.Offer(0);
        r.Offer(0);
        Assert.True(q.TryPop(out _));
        Assert.Equal(VirtqueueError.DescriptorIndexOutOfRange, Refused(r, q));
    }

    [Fact]
    public void Completing_a_head_never_popped_is_refused()
    {
        using var r = new Ring();
        var q = r.CreateQueue();
        Assert.Equal(VirtqueueError.BadUsedEntry, Assert.Throws<VirtqueueException>(() => q.AddUsed(2, 0)).Error);
    }

    [Theory]
    [InlineData((ushort)3, Ring.Desc, Ring.Avail, Ring.Used, VirtqueueError.BadQueueLayout)]
    [InlineData((ushort)16, Ring.Desc, Ring.Avail, Ring.Used, VirtqueueError.BadQueueLayout)]
    [InlineData((ushort)8, Ring.Desc + 8, Ring.Avail, Ring.Used, VirtqueueError.BadQueueLayout)]
    [InlineData((ushort)8, Ring.Desc, Ring.Avail + 1, Ring.Used, VirtqueueError.BadQueueLayout)]
    [InlineData((ushort)8, Ring.Desc, Ring.Avail, Ring.Used + 2, VirtqueueError.BadQueueLayout)]
    [InlineData((ushort)8, Ring.RamEnd - 64, Ring.Avail, Ring.Used, VirtqueueError.AddressOutsideRam)]
    [InlineData((ushort)8, Ring.Desc, Ring.Avail, Ring.HighEnd - 8, VirtqueueError.AddressOutsideRam)]
    public void Bad_layouts_are_refused_at_activation(ushort size, ulong desc, ulong avail, ulong used, VirtqueueError error)
    {
        using var r = new Ring();
        var q = new Virtqueue(r.Memory, 8) { Size = size, DescTableAddress = desc, AvailRingAddress = avail, UsedRingAddress = used };
        Assert.Equal(error, Assert.Throws<VirtqueueException>(() => q.Activate(VirtioFeatures.Common)).Error);
        Assert.False(q.IsActive);
    }
}
