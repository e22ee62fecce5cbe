using SharpVmm.Devices.Interrupts;

namespace SharpVmm.Devices.Tests.Interrupts;

public class PicPairTests
{
    private static PicPair Initialized(byte masterMask = 0x00, byte slaveMask = 0x00, bool autoEoi = false)
    {
        var pic = new PicPair();
        pic.InitLikeLinux(autoEoi);
        pic.Out(0x21, masterMask);
        pic.Out(0xA1, slaveMask);
        return pic;
    }

    [Fact]
    public void Edge_irq_is_acknowledged_with_icw2_vector_and_held_in_service_until_eoi()
    {
        var pic = Initialized();
        pic.SetIrq(1, true);
        Assert.True(pic.IntOutput);
        Assert.Equal(0x31, pic.Acknowledge());
        Assert.False(pic.IntOutput);

        pic.Out(0x20, 0x0B); // OCW3: read ISR
        Assert.Equal(0x02, pic.In(0x20));
        pic.Out(0x20, 0x0A); // OCW3: read IRR
        Assert.Equal(0x00, pic.In(0x20));

        pic.Out(0x20, 0x20); // non-specific EOI
        pic.Out(0x20, 0x0B);
        Assert.Equal(0x00, pic.In(0x20));
    }

    [Fact]
    public void Slave_irq_cascades_through_master_ir2()
    {
        var pic = Initialized();
        pic.SetIrq(10, true);
        Assert.True(pic.IntOutput);
        Assert.Equal(0x38 + 2, pic.Acknowledge());
        var (_, isr, _) = pic.Snapshot();
        Assert.Equal((ushort)(1 << 10 | 1 << 2), isr);

        pic.Out(0xA0, 0x20);
        pic.Out(0x20, 0x20);
        Assert.Equal((ushort)0, pic.Snapshot().Isr);
        Assert.False(pic.IntOutput);
    }

    [Fact]
    public void Second_slave_request_arrives_after_eoi_of_the_first()
    {
        var pic = Initialized();
        pic.SetIrq(12, true);
        pic.SetIrq(12, false);
        Assert.Equal(0x38 + 4, pic.Acknowledge());
        pic.SetIrq(14, true);
        pic.SetIrq(14, false);
        Assert.False(pic.IntOutput); // IR2 in service blocks the cascade (fully nested mode)
        pic.Out(0xA0, 0x20);
        pic.Out(0x20, 0x20);
        Assert.True(pic.IntOutput);
        Assert.Equal(0x38 + 6, pic.Acknowledge());
    }

    [Fact]
    public void Masked_irq_stays_in_irr_until_unmasked()
    {
        var pic = Initialized(masterMask: 0x10);
        pic.SetIrq(4, true);
        Assert.False(pic.IntOutput);
        Assert.Equal(0x10, pic.In(0x20) & 0x10); // IRR is the default read register after init
        Assert.Equal(0x10, pic.In(0x21));
        pic.Out(0x21, 0x00);
        Assert.True(pic.IntOutput);
        Assert.Equal(0x34, pic.Acknowledge());
    }

    [Fact]
    public void Lower_irq_has_priority_and_in_service_irq_blocks_only_lower_priority()
    {
        var pic = Initialized();
        pic.SetIrq(5, true);
        pic.SetIrq(3, true);
        Assert.Equal(0x33, pic.Acknowledge());
        Assert.False(pic.IntOutput); // IRQ5 waits behind IRQ3 in service
        pic.SetIrq(1, true);
        Assert.True(pic.IntOutput); // IRQ1 preempts
        Assert.Equal(0x31, pic.Acknowledge());
        pic.Out(0x20, 0x20); // ends IRQ1 (highest in service)
        pic.Out(0x20, 0x20); // ends IRQ3
        Assert.Equal(0x35, pic.Acknowledge());
    }

    [Fact]
    public void Edge_request_is_latched_after_the_line_drops_and_needs_a_new_edge_to_repeat()
    {
        var pic = Initialized();
        pic.SetIrq(3, true);
        pic.SetIrq(3, false);
        Assert.True(pic.IntOutput);
        Assert.Equal(0x33, pic.Acknowledge());
        pic.Out(0x20, 0x20);
        pic.SetIrq(3, true);
        Assert.True(pic.IntOutput);
        Assert.Equal(0x33, pic.Acknowledge());
        pic.Out(0x20, 0x20);
        pic.SetIrq(3, true); // still high: no new edge
        Assert.False(pic.IntOutput);
    }

    [Fact]
    public void Level_triggered_irq_from_elcr_follows_the_line()
    {
        var pic = Initialized();
        pic.Out(0x4D1, 0xFF); // ask for all slave IRQs level-triggered; IRQ8 and IRQ13 are not allowed
        Assert.Equal(0xDE, pic.In(0x4D1));
        pic.Out(0x4D0, 0xFF);
        Assert.Equal(0xF8, pic.In(0x4D0));

        pic.SetIrq(11, true);
        Assert.Equal(0x38 + 3, pic.Acknowledge());
        pic.Out(0xA0, 0x20);
        pic.Out(0x20, 0x20);
        Assert.True(pic.IntOutput); // still asserted: requests again after EOI
        Assert.Equal(0x38 + 3, pic.Acknowledge());
        pic.SetIrq(11, false); // the handler quiets the device before the EOIs
        pic.Out(0xA0, 0x20);
        pic.Out(0x20, 0x20);
        Assert.False(pic.IntOutput);
        Assert.Equal((ushort)0, pic.Snapshot().Irr);
    }

    [Fact]
    public void Auto_eoi_does_not_set_isr()
    {
        var pic = Initialized(autoEoi: true);
        pic.SetIrq(6, true);
        Assert.Equal(0x36, pic.Acknowledge());
        Assert.Equal((ushort)0, pic.Snapshot().Isr);
    }

    [Fact]
    public void Vanished_request_gives_spurious_irq7_or_irq15_without_isr()
    {
        var pic = Initialized();
        Assert.Equal(0x37, pic.Acknowledge());
        Assert.Equal((ushort)0, pic.Snapshot().Isr);

        pic.Out(0x4D1, 0x08); // IRQ11 level-triggered
        pic.SetIrq(11, true);
        Assert.True(pic.IntOutput);
        pic.Out(0xA1, 0x08); // masked on the slave after the master latched IR2
        Assert.Equal(0x3F, pic.Acknowledge());
        Assert.Equal((ushort)(1 << 2), pic.Snapshot().Isr); // the master's cascade is in service, not the slave's IR7
    }

    [Fact]
    public void Specific_eoi_and_rotation_change_priorities()
    {
        var pic = Initialized();
        pic.SetIrq(2 + 1, true);
        Assert.Equal(0x33, pic.Acknowledge());
        pic.Out(0x20, 0x60 | 3); // specific EOI for IR3
        Assert.Equal((ushort)0, pic.Snapshot().Isr);

        pic.Out(0x20, 0xC0 | 4); // set priority: IR4 lowest, so IR5 is now highest
        pic.SetIrq(1, true);
        pic.SetIrq(5, true);
        Assert.Equal(0x35, pic.Acknowledge());

        pic.Out(0x20, 0xA0); // rotate on non-specific EOI: IR5 becomes lowest, IR6 highest
        pic.SetIrq(6, true);
        Assert.Equal(0x36, pic.Acknowledge());
        pic.Out(0x20, 0x20);
        Assert.Equal(0x31, pic.Acknowledge());
    }

    [Fact]
    public void Poll_command_returns_and_acknowledges_the_highest_request()
    {
        var pic = Initialized();
        pic.SetIrq(7, true);
        pic.Out(0x20, 0x0C); // OCW3 poll
        Assert.Equal(0x87, pic.In(0x20));
        Assert.Equal((ushort)0x80, pic.Snapshot().Isr);
        pic.Out(0x20, 0x0C);
        Assert.Equal(0x00, pic.In(0x20)); // nothing else pending
    }

    [Fact]
    public void Int_output_changes_are_reported()
    {
        var pic = Initialized();
        var seen = new List<bool>();
        pic.IntOutputChanged = seen.Add;
        pic.SetIrq(4, true);
        pic.Acknowledge();
        Assert.Equal([true, false], seen);
    }

    [Fact]
    public void Out_of_range_irq_is_rejected_and_ir2_input_is_ignored()
    {
        var pic = Initialized();
        Assert.Throws<ArgumentOutOfRangeException>(() => pic.SetIrq(16, true));
        pic.SetIrq(2, true);
        Assert.False(pic.IntOutput);
    }
}
