using SharpVmm.Devices.Interrupts;

namespace SharpVmm.Devices.Tests.Interrupts;

public class IoApicTests
{
    private const ulong LevelTriggered = 1ul << 15;
    private const ulong Masked = 1ul << 16;
    private const ulong RemoteIrr = 1ul << 14;
    private const ulong Logical = 1ul << 11;

    private static ulong Dest(int apicId) => (ulong)apicId << 56;

    [Fact]
    public void Identification_registers_read_back()
    {
        using var rig = new IrqChipRig(cpus: 2);
        IoApic io = rig.Chip.IoApic;
        Assert.Equal(0x0017_0020u, io.ReadIoApic(0x01));
        Assert.Equal(2u << 24, io.ReadIoApic(0x00)); // default ID follows the CPUs' IDs
        io.WriteIoApic(0x00, 5u << 24);
        Assert.Equal(5u << 24, io.ReadIoApic(0x00));
        Assert.Equal(0x0001_0000u, io.ReadIoApic(0x10)); // pins start masked
    }

    [Fact]
    public void Redirection_entry_round_trips_and_read_only_bits_are_kept()
    {
        using var rig = new IrqChipRig();
        IoApic io = rig.Chip.IoApic;
        ulong entry = 0x41 | (1ul << 8) | Logical | (1ul << 13) | LevelTriggered | Masked | (0x03ul << 56);
        io.Redirect(7, entry | RemoteIrr | (1ul << 12)); // remote IRR and delivery status are read-only
        Assert.Equal(entry, io.GetRedirection(7));
        Assert.Equal((uint)entry, io.ReadIoApic(0x10 + 14));
        Assert.Equal((uint)(entry >> 32), io.ReadIoApic(0x10 + 15));
    }

    [Fact]
    public void Edge_pin_is_delivered_to_the_destination_apic_and_acknowledged()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic cpu1 = rig.Apic(1);
        cpu1.Enable();
        rig.Apic(0).Enable();
        rig.Chip.IoApic.Redirect(4, 0x24 | Dest(1));

        rig.Chip.SetIrq(4, true);
        rig.Chip.SetIrq(4, false);

        Assert.False(rig.Apic(0).HasInterrupt);
        Assert.True(cpu1.HasInterrupt);
        Assert.Equal(0x24, cpu1.Acknowledge());
        Assert.True(cpu1.IsrBit(0x24));
        Assert.False(cpu1.TmrBit(0x24));
        Assert.False(cpu1.HasInterrupt);
        cpu1.Write(ApicRegisters.Eoi, 0);
        Assert.False(cpu1.IsrBit(0x24));
    }

    [Fact]
    public void Level_pin_sets_remote_irr_until_eoi_and_redelivers_while_asserted()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        IoApic io = rig.Chip.IoApic;
        io.Redirect(9, 0x29 | LevelTriggered | Dest(0));

        rig.Chip.SetIrq(9, true);
        Assert.NotEqual(0ul, io.GetRedirection(9) & RemoteIrr);
        Assert.Equal(0x29, cpu.Acknowledge());
        Assert.True(cpu.TmrBit(0x29));

        cpu.Write(ApicRegisters.Eoi, 0); // broadcast EOI: remote IRR clears and the still-high line fires again
        Assert.True(cpu.HasInterrupt);
        Assert.NotEqual(0ul, io.GetRedirection(9) & RemoteIrr);
        Assert.Equal(0x29, cpu.Acknowledge());

        rig.Chip.SetIrq(9, false);
        cpu.Write(ApicRegisters.Eoi, 0);
        Assert.Equal(0ul, io.GetRedirection(9) & RemoteIrr);
        Assert.False(cpu.HasInterrupt);
    }

    [Fact]
    public void Level_assertions_while_remote_irr_is_set_are_not_redelivered()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        rig.Chip.IoApic.Redirect(10, 0x2A | LevelTriggered | Dest(0));
        rig.Chip.SetIrq(10, true);
        Assert.Equal(0x2A, cpu.Acknowledge());
        rig.Chip.SetIrq(10, false);
        rig.Chip.SetIrq(10, true);
        Assert.False(cpu.HasInterrupt);
    }

    [Fact]
    public void Eoi_register_clears_remote_irr()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        IoApic io = rig.Chip.IoApic;
        io.Redirect(11, 0x2B | LevelTriggered | Dest(0));
        rig.Chip.SetIrq(11, true);
        rig.Chip.SetIrq(11, false);
        io.Write(0x40, [0x2B, 0, 0, 0]);
        Assert.Equal(0ul, io.GetRedirection(11) & RemoteIrr);
    }

    [Fact]
    public void Masked_pin_is_not_delivered_and_an_asserted_level_pin_fires_when_unmasked()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        IoApic io = rig.Chip.IoApic;
        io.Redirect(5, 0x25 | Masked | Dest(0));
        rig.Chip.SetIrq(5, true);
        rig.Chip.SetIrq(5, false);
        Assert.False(cpu.HasInterrupt);

        io.Redirect(6, 0x26 | LevelTriggered | Masked | Dest(0));
        rig.Chip.SetIrq(6, true);
        Assert.False(cpu.HasInterrupt);
        io.Redirect(6, 0x26 | LevelTriggered | Dest(0));
        Assert.True(cpu.HasInterrupt);
        Assert.Equal(0x26, cpu.Acknowledge());
    }

    [Fact]
    public void Logical_flat_destination_selects_apics_by_ldr_bits()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic a = rig.Apic(0), b = rig.Apic(1);
        a.Enable();
        b.Enable();
        a.Write(ApicRegisters.Ldr, 0x01u << 24);
        b.Write(ApicRegisters.Ldr, 0x02u << 24);
        rig.Chip.IoApic.Redirect(12, 0x2C | Logical | (0x02ul << 56));
        rig.Chip.SetIrq(12, true);
        Assert.False(a.HasInterrupt);
        Assert.True(b.HasInterrupt);
    }

    [Fact]
    public void Lowest_priority_goes_to_the_apic_with_the_lowest_tpr()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic a = rig.Apic(0), b = rig.Apic(1);
        a.Enable();
        b.Enable();
        a.Write(ApicRegisters.Ldr, 0x01u << 24);
        b.Write(ApicRegisters.Ldr, 0x02u << 24);
        a.Write(ApicRegisters.Tpr, 0x20);
        rig.Chip.IoApic.Redirect(13, 0x3D | (1ul << 8) | Logical | (0x03ul << 56));
        rig.Chip.SetIrq(13, true);
        Assert.False(a.IrrBit(0x3D));
        Assert.True(b.IrrBit(0x3D));
    }

    [Fact]
    public void Nmi_delivery_mode_raises_nmi()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        rig.Chip.IoApic.Redirect(14, (4ul << 8) | Dest(0));
        rig.Chip.SetIrq(14, true);
        Assert.True(cpu.TryTakeNmi());
        Assert.False(cpu.TryTakeNmi());
        Assert.False(cpu.HasInterrupt);
    }

    [Fact]
    public void ExtInt_delivery_mode_takes_the_vector_from_the_pic()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        cpu.Write(ApicRegisters.LvtLint0, ApicRegisters.LvtMasked); // not through LINT0
        PicPair pic = rig.Chip.Pic;
        pic.InitLikeLinux();
        pic.Out(0x21, 0x00);
        rig.Chip.SetIrq(3, true);
        Assert.False(cpu.HasInterrupt);
        rig.Chip.IoApic.Redirect(3, (7ul << 8) | Dest(0));
        rig.Chip.SetIrq(3, false);
        rig.Chip.SetIrq(3, true);
        Assert.True(cpu.HasInterrupt);
        Assert.Equal(0x33, cpu.Acknowledge());
    }

    [Fact]
    public void Bad_pin_is_rejected()
    {
        using var rig = new IrqChipRig(cpus: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Chip.IoApic.SetPin(24, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Chip.SetIrq(24, true));
    }
}
