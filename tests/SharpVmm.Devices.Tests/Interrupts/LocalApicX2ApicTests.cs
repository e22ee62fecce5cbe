using SharpVmm.Core.Interrupts;
using SharpVmm.Core.State;
using SharpVmm.Devices.Interrupts;

namespace SharpVmm.Devices.Tests.Interrupts;

/// <summary>x2APIC mode (SDM vol. 3, 11.12): the APIC base transitions, the MSR interface, 32-bit destinations.</summary>
public class LocalApicX2ApicTests
{
    private const uint Base = 0x1B;
    private const uint MsrId = 0x802, MsrVersion = 0x803, MsrTpr = 0x808, MsrApr = 0x809, MsrPpr = 0x80A, MsrEoi = 0x80B;
    private const uint MsrLdr = 0x80D, MsrDfr = 0x80E, MsrSvr = 0x80F, MsrIsr0 = 0x810, MsrIrr0 = 0x820, MsrEsr = 0x828;
    private const uint MsrIcr = 0x830, MsrIcrHigh = 0x831, MsrLvtTimer = 0x832, MsrInitialCount = 0x838;
    private const uint MsrCurrentCount = 0x839, MsrDivide = 0x83E, MsrSelfIpi = 0x83F;
    private const ulong XApic = 0xFEE0_0800, X2Apic = 0xFEE0_0C00, Disabled = 0xFEE0_0000;
    private const uint Init = 5u << 8, Startup = 6u << 8, LogicalDest = 1u << 11, LevelAssert = 1u << 14;

    private static void Ok(ApicMsrResult r) => Assert.Equal(ApicMsrResult.Done, r);

    private static void Gp(ApicMsrResult r) => Assert.Equal(ApicMsrResult.Fault, r);

    private static ulong Rd(LocalApic apic, uint msr)
    {
        Ok(apic.ReadMsr(msr, out ulong v));
        return v;
    }

    private static void ToX2Apic(LocalApic apic)
    {
        Ok(apic.WriteMsr(Base, X2Apic | (apic.IsBootstrapProcessor ? 0x100u : 0)));
        Ok(apic.WriteMsr(MsrSvr, 0x1FF));
    }

    [Fact]
    public void Mode_transitions_follow_the_sdm_and_invalid_ones_fault()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic ap = rig.Apic(1);
        Gp(ap.WriteMsr(Base, 0xFEE0_0400));          // EXTD without EN: invalid state
        Gp(ap.WriteMsr(Base, XApic | 0x200));        // reserved bit 9
        Gp(ap.ReadMsr(MsrId, out _));                // x2APIC registers need x2APIC mode
        Ok(ap.WriteMsr(Base, X2Apic));               // xAPIC -> x2APIC
        Assert.True(ap.IsX2ApicMode);
        Assert.Equal(X2Apic, Rd(ap, Base));
        Gp(ap.WriteMsr(Base, XApic));                // x2APIC -> xAPIC directly
        Ok(ap.WriteMsr(Base, Disabled));             // x2APIC -> disabled
        Assert.False(ap.IsX2ApicMode);
        Gp(ap.WriteMsr(Base, X2Apic));               // disabled -> x2APIC directly
        Ok(ap.WriteMsr(Base, XApic));                // disabled -> xAPIC -> x2APIC
        Ok(ap.WriteMsr(Base, X2Apic));
        Ok(rig.Apic(0).WriteMsr(Base, X2Apic));      // the BSP flag is read-only and stays
        Assert.Equal(X2Apic | 0x100, Rd(rig.Apic(0), Base));
    }

    [Fact]
    public void Id_is_32_bits_ldr_is_derived_and_both_are_read_only()
    {
        using var rig = new IrqChipRig(cpus: 4);
        LocalApic cpu = rig.Apic(3);
        cpu.Write(ApicRegisters.Id, 0x0900_0000);   // xAPIC mode lets software change the ID...
        ToX2Apic(cpu);
        Assert.Equal(3ul, Rd(cpu, MsrId));           // ...x2APIC mode has the initial one, unshifted
        Assert.Equal(1ul << 3, Rd(cpu, MsrLdr));     // cluster 0, bit 3
        Assert.Equal(0x0005_0014ul, Rd(cpu, MsrVersion));
        Gp(cpu.WriteMsr(MsrId, 5));
        Gp(cpu.WriteMsr(MsrLdr, 1));
        Gp(cpu.WriteMsr(MsrVersion, 0));
        Gp(cpu.WriteMsr(MsrPpr, 0));
        Gp(cpu.WriteMsr(MsrIsr0, 0));
        Gp(cpu.WriteMsr(MsrCurrentCount, 0));
    }

    [Fact]
    public void Write_only_absent_and_reserved_registers_fault()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        ToX2Apic(cpu);
        Gp(cpu.ReadMsr(MsrEoi, out _));              // write-only
        Gp(cpu.ReadMsr(MsrSelfIpi, out _));
        foreach (uint absent in new[] { MsrApr, MsrDfr, MsrIcrHigh, 0x80Cu /* RRD */, 0x82Fu /* CMCI */, 0x840u, 0x8FFu })
        {
            Gp(cpu.ReadMsr(absent, out _));
            Gp(cpu.WriteMsr(absent, 0));
        }
        Gp(cpu.WriteMsr(MsrEoi, 1));                 // EOI and ESR take only zero
        Gp(cpu.WriteMsr(MsrEsr, 1));
        Gp(cpu.WriteMsr(MsrTpr, 0x100));             // reserved bits
        Gp(cpu.WriteMsr(MsrSvr, 0x11FF));            // EOI-broadcast suppression is not offered
        Gp(cpu.WriteMsr(MsrTpr, 1ul << 32));         // only the ICR is 64 bits wide
        Gp(cpu.WriteMsr(MsrSelfIpi, 0x100));
        Ok(cpu.WriteMsr(MsrTpr, 0x20));
        Assert.Equal(0x20ul, Rd(cpu, MsrTpr));
        Assert.Equal(0x20ul, Rd(cpu, MsrPpr));
        Assert.Equal(0x20, cpu.Tpr);                 // CR8 sees it
    }

    [Fact]
    public void Self_ipi_and_eoi_through_msrs()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        ToX2Apic(cpu);
        Ok(cpu.WriteMsr(MsrSelfIpi, 0x41));
        Assert.Equal(1ul << 1, Rd(cpu, MsrIrr0 + 2));
        Assert.Equal(0x41, cpu.Acknowledge());
        Assert.Equal(1ul << 1, Rd(cpu, MsrIsr0 + 2));
        Ok(cpu.WriteMsr(MsrEoi, 0));
        Assert.Equal(0ul, Rd(cpu, MsrIsr0 + 2));
    }

    [Fact]
    public void Icr_is_one_64_bit_write_with_a_32_bit_physical_or_cluster_destination()
    {
        using var rig = new IrqChipRig(cpus: 4);
        for (int i = 0; i < 4; i++) ToX2Apic(rig.Apic(i));
        LocalApic bsp = rig.Apic(0);
        Ok(bsp.WriteMsr(MsrIcr, (2ul << 32) | 0x51));               // physical APIC ID 2
        Assert.True(rig.Apic(2).IrrBit(0x51));
        Assert.False(rig.Apic(1).IrrBit(0x51));
        Assert.Equal((2ul << 32) | 0x51, Rd(bsp, MsrIcr));
        Ok(bsp.WriteMsr(MsrIcr, (0x0000_000Aul << 32) | LogicalDest | 0x52)); // cluster 0, members 1 and 3
        Assert.True(rig.Apic(1).IrrBit(0x52));
        Assert.True(rig.Apic(3).IrrBit(0x52));
        Assert.False(rig.Apic(2).IrrBit(0x52));
        Assert.False(bsp.IrrBit(0x52));
        Ok(bsp.WriteMsr(MsrIcr, (0x0001_0001ul << 32) | LogicalDest | 0x53)); // cluster 1: nobody here
        for (int i = 0; i < 4; i++) Assert.False(rig.Apic(i).IrrBit(0x53));
        Ok(bsp.WriteMsr(MsrIcr, (0xFFFF_FFFFul << 32) | 0x54));    // broadcast
        for (int i = 0; i < 4; i++) Assert.True(rig.Apic(i).IrrBit(0x54));
        Ok(bsp.WriteMsr(MsrIcr, (0xFFul << 32) | 0x55));           // 0xFF is an ordinary ID in x2APIC format
        for (int i = 0; i < 4; i++) Assert.False(rig.Apic(i).IrrBit(0x55));
        Gp(bsp.WriteMsr(MsrIcr, 0x1000 | 0x56));                    // delivery status is not writable
    }

    [Fact]
    public void Init_and_startup_from_an_x2apic_bsp_reach_an_ap_still_in_xapic_mode()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic bsp = rig.Apic(0), ap = rig.Apic(1);
        ToX2Apic(bsp);
        Ok(bsp.WriteMsr(MsrIcr, (1ul << 32) | Init | LevelAssert));
        Assert.True(ap.TryTakeInit());
        Ok(bsp.WriteMsr(MsrIcr, (1ul << 32) | Startup | 0x08));
        Assert.True(ap.TryTakeStartup(out byte vector));
        Assert.Equal(0x08, vector);
    }

    [Fact]
    public void Init_keeps_x2apic_mode_and_the_derived_ldr()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic bsp = rig.Apic(0), ap = rig.Apic(1);
        ToX2Apic(bsp);
        ToX2Apic(ap);
        Ok(bsp.WriteMsr(MsrIcr, (1ul << 32) | Init | LevelAssert));
        Assert.True(ap.IsX2ApicMode);
        Assert.Equal(2ul, Rd(ap, MsrLdr));
        Assert.Equal(0xFFul, Rd(ap, MsrSvr));        // registers are back at reset
    }

    [Fact]
    public void Ioapic_messages_reach_x2apic_cpus_by_8_bit_id()
    {
        using var rig = new IrqChipRig(cpus: 2);
        for (int i = 0; i < 2; i++) ToX2Apic(rig.Apic(i));
        rig.Chip.IoApic.Redirect(5, 0x61ul | (1ul << 56));           // fixed, physical, APIC ID 1, edge
        rig.Chip.SetIrq(5, true);
        Assert.True(rig.Apic(1).IrrBit(0x61));
        Assert.False(rig.Apic(0).IrrBit(0x61));
    }

    [Fact]
    public void Timer_runs_through_msrs()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        ToX2Apic(cpu);
        var woken = new ManualResetEventSlim();
        cpu.Wake = woken.Set;
        Ok(cpu.WriteMsr(MsrLvtTimer, 0xEC));
        Ok(cpu.WriteMsr(MsrDivide, 0x0B));
        Ok(cpu.WriteMsr(MsrInitialCount, 5_000_000)); // 5 ms at one count per ns
        Assert.Equal(5_000_000ul, Rd(cpu, MsrInitialCount));
        Assert.True(woken.Wait(TimeSpan.FromSeconds(10)));
        Assert.Equal(0ul, Rd(cpu, MsrCurrentCount));
        Assert.Equal(0xEC, cpu.Acknowledge());
    }

    [Fact]
    public void Snapshot_carries_x2apic_mode()
    {
        byte[] saved;
        using (var rig = new IrqChipRig(cpus: 2))
        {
            ToX2Apic(rig.Apic(1));
            Ok(rig.Apic(1).WriteMsr(MsrTpr, 0x30));
            var w = new StateWriter();
            rig.Chip.SaveState(w);
            saved = w.ToArray();
        }
        using var other = new IrqChipRig(cpus: 2);
        other.Chip.LoadState(new StateReader(saved), other.Chip.StateVersion);
        Assert.True(other.Apic(1).IsX2ApicMode);
        Assert.False(other.Apic(0).IsX2ApicMode);
        Assert.Equal(0x30ul, Rd(other.Apic(1), MsrTpr));
        Assert.Equal(1ul, Rd(other.Apic(1), MsrId));
        Gp(other.Apic(1).WriteMsr(Base, XApic));
    }
}
