using SharpVmm.Devices.Interrupts;

namespace SharpVmm.Devices.Tests.Interrupts;

public class LocalApicTests
{
    private const uint Fixed = 0, Nmi = 4u << 8, Init = 5u << 8, Startup = 6u << 8;
    private const uint LogicalDest = 1u << 11, LevelAssert = 1u << 14, LevelTrigger = 1u << 15;
    private const uint Self = 1u << 18, AllIncludingSelf = 2u << 18, AllExcludingSelf = 3u << 18;

    private static void SendIpi(LocalApic from, byte destination, uint icrLow)
    {
        from.Write(ApicRegisters.IcrHigh, (uint)destination << 24);
        from.Write(ApicRegisters.IcrLow, icrLow);
    }

    [Fact]
    public void Id_version_and_reset_state()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic bsp = rig.Apic(0), ap = rig.Apic(1);
        Assert.Equal(0u, bsp.Read(ApicRegisters.Id));
        Assert.Equal(1u << 24, ap.Read(ApicRegisters.Id));
        Assert.Equal(1, ap.ApicId);
        Assert.Equal(0x0005_0014u, bsp.Read(ApicRegisters.Version));
        Assert.Equal(0xFFu, bsp.Read(ApicRegisters.Svr));
        Assert.Equal(0xFFFF_FFFFu, bsp.Read(ApicRegisters.Dfr));
        Assert.Equal(0x700u, bsp.Read(ApicRegisters.LvtLint0)); // virtual wire on the BSP
        Assert.Equal(ApicRegisters.LvtMasked, ap.Read(ApicRegisters.LvtLint0));
        Assert.True(bsp.TryReadMsr(0x1B, out ulong baseMsr));
        Assert.Equal(0xFEE0_0900ul, baseMsr);
        Assert.True(ap.TryReadMsr(0x1B, out baseMsr));
        Assert.Equal(0xFEE0_0800ul, baseMsr);
        Assert.False(bsp.TryReadMsr(0x10, out _));
    }

    [Fact]
    public void Software_disabled_apic_drops_fixed_interrupts_and_keeps_lvt_masked()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic cpu = rig.Apic(1);
        cpu.Write(ApicRegisters.LvtError, 0xFE);
        Assert.Equal(ApicRegisters.LvtMasked | 0xFE, cpu.Read(ApicRegisters.LvtError));
        SendIpi(rig.Apic(0), 1, Fixed | 0x40);
        Assert.False(cpu.IrrBit(0x40));
        cpu.Enable();
        cpu.Write(ApicRegisters.LvtError, 0xFE);
        Assert.Equal(0xFEu, cpu.Read(ApicRegisters.LvtError));
        cpu.Write(ApicRegisters.Svr, 0xFF); // disabling masks every LVT
        Assert.Equal(ApicRegisters.LvtMasked | 0xFE, cpu.Read(ApicRegisters.LvtError));
    }

    [Fact]
    public void Higher_vector_is_served_first_and_eoi_ends_the_highest_in_service()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        SendIpi(cpu, 0, Self | 0x41);
        SendIpi(cpu, 0, Self | 0x82);
        Assert.Equal(0x82, cpu.Acknowledge());
        Assert.Equal(0x80u, cpu.Read(ApicRegisters.Ppr));
        Assert.False(cpu.HasInterrupt); // 0x41 is below the in-service class
        cpu.Write(ApicRegisters.Eoi, 0);
        Assert.Equal(0u, cpu.Read(ApicRegisters.Ppr));
        Assert.True(cpu.HasInterrupt);
        Assert.Equal(0x41, cpu.Acknowledge());
        cpu.Write(ApicRegisters.Eoi, 0);
        Assert.Equal(-1, cpu.Acknowledge());
    }

    [Fact]
    public void Tpr_blocks_vectors_at_or_below_its_class()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        cpu.Write(ApicRegisters.Tpr, 0x50);
        SendIpi(cpu, 0, Self | 0x55);
        Assert.True(cpu.IrrBit(0x55));
        Assert.False(cpu.HasInterrupt);
        Assert.Equal(0x50u, cpu.Read(ApicRegisters.Ppr));
        cpu.Tpr = 0x40; // CR8 = 4
        Assert.True(cpu.HasInterrupt);
        Assert.Equal(0x55, cpu.Acknowledge());
    }

    [Fact]
    public void Illegal_vector_is_reported_in_esr_after_a_write()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Enable();
        SendIpi(cpu, 0, Self | 0x05);
        Assert.Equal(0u, cpu.Read(ApicRegisters.Esr)); // ESR updates on write
        cpu.Write(ApicRegisters.Esr, 0);
        Assert.Equal(1u << 5, cpu.Read(ApicRegisters.Esr));
        cpu.Write(ApicRegisters.Esr, 0);
        Assert.Equal(0u, cpu.Read(ApicRegisters.Esr));
    }

    [Fact]
    public void Fixed_ipi_reaches_the_other_cpu_and_wakes_it()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic a = rig.Apic(0), b = rig.Apic(1);
        a.Enable();
        b.Enable();
        using var woken = new ManualResetEventSlim();
        b.Wake = woken.Set;
        var sender = new Thread(() => SendIpi(a, 1, Fixed | 0xF1));
        sender.Start();
        Assert.True(woken.Wait(TimeSpan.FromSeconds(10)));
        sender.Join();
        Assert.True(b.HasInterrupt);
        Assert.False(a.HasInterrupt);
        Assert.Equal(0xF1, b.Acknowledge());
        Assert.Equal(0u, a.Read(ApicRegisters.IcrLow) & (1u << 12)); // delivery status idle
    }

    [Fact]
    public void Shorthands_select_self_all_and_all_but_self()
    {
        using var rig = new IrqChipRig(cpus: 3);
        LocalApic a = rig.Apic(0), b = rig.Apic(1), c = rig.Apic(2);
        foreach (LocalApic x in new[] { a, b, c }) x.Enable();

        SendIpi(b, 0, AllExcludingSelf | 0x61);
        Assert.True(a.IrrBit(0x61));
        Assert.False(b.IrrBit(0x61));
        Assert.True(c.IrrBit(0x61));

        SendIpi(b, 0, Self | 0x62);
        Assert.False(a.IrrBit(0x62));
        Assert.True(b.IrrBit(0x62));

        SendIpi(c, 0, AllIncludingSelf | 0x63);
        Assert.True(a.IrrBit(0x63) && b.IrrBit(0x63) && c.IrrBit(0x63));

        SendIpi(a, 0xFF, Fixed | 0x64); // physical broadcast
        Assert.True(a.IrrBit(0x64) && b.IrrBit(0x64) && c.IrrBit(0x64));
    }

    [Fact]
    public void Logical_cluster_destinations_match_cluster_and_member()
    {
        using var rig = new IrqChipRig(cpus: 3);
        LocalApic a = rig.Apic(0), b = rig.Apic(1), c = rig.Apic(2);
        foreach (LocalApic x in new[] { a, b, c })
        {
            x.Enable();
            x.Write(ApicRegisters.Dfr, 0x0FFF_FFFF);
        }
        Assert.Equal(0x0FFF_FFFFu, a.Read(ApicRegisters.Dfr));
        a.Write(ApicRegisters.Ldr, 0x11u << 24); // cluster 1, member 1
        b.Write(ApicRegisters.Ldr, 0x12u << 24); // cluster 1, member 2
        c.Write(ApicRegisters.Ldr, 0x21u << 24); // cluster 2, member 1
        SendIpi(a, 0x13, LogicalDest | 0x70);
        Assert.True(a.IrrBit(0x70) && b.IrrBit(0x70));
        Assert.False(c.IrrBit(0x70));
        SendIpi(a, 0xF1, LogicalDest | 0x71); // member 1 of every cluster
        Assert.True(a.IrrBit(0x71) && c.IrrBit(0x71));
        Assert.False(b.IrrBit(0x71));
    }

    [Fact]
    public void Init_then_startup_ipi_follow_the_linux_ap_boot_sequence()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic bsp = rig.Apic(0), ap = rig.Apic(1);
        bsp.Enable();
        int wakes = 0;
        ap.Wake = () => Interlocked.Increment(ref wakes);

        SendIpi(bsp, 1, Init | LevelTrigger | LevelAssert);
        SendIpi(bsp, 1, Init | LevelTrigger); // de-assert: no effect
        Assert.True(ap.TryTakeInit());
        Assert.False(ap.TryTakeInit());

        SendIpi(bsp, 1, Startup | 0x9A);
        SendIpi(bsp, 1, Startup | 0x9B); // the second SIPI finds the CPU already started
        Assert.True(ap.TryTakeStartup(out byte vector));
        Assert.Equal(0x9A, vector);
        Assert.False(ap.TryTakeStartup(out _));
        Assert.Equal(2, Volatile.Read(ref wakes));
    }

    [Fact]
    public void Startup_ipi_without_init_is_ignored_by_a_running_cpu()
    {
        using var rig = new IrqChipRig(cpus: 2);
        SendIpi(rig.Apic(1), 0, Startup | 0x10);
        Assert.False(rig.Apic(0).TryTakeStartup(out _));
    }

    [Fact]
    public void Init_resets_the_apic_registers()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic ap = rig.Apic(1);
        ap.Enable();
        ap.Write(ApicRegisters.Tpr, 0x30);
        SendIpi(rig.Apic(0), 1, Init | LevelAssert);
        Assert.Equal(0u, ap.Read(ApicRegisters.Tpr));
        Assert.Equal(0xFFu, ap.Read(ApicRegisters.Svr));
        Assert.Equal(1u << 24, ap.Read(ApicRegisters.Id));
    }

    [Fact]
    public void Nmi_ipi_is_taken_once()
    {
        using var rig = new IrqChipRig(cpus: 2);
        SendIpi(rig.Apic(0), 1, Nmi);
        Assert.True(rig.Apic(1).TryTakeNmi());
        Assert.False(rig.Apic(1).TryTakeNmi());
    }

    [Fact]
    public void Pic_interrupt_arrives_through_lint0_in_virtual_wire_mode()
    {
        using var rig = new IrqChipRig(cpus: 2);
        LocalApic bsp = rig.Apic(0);
        PicPair pic = rig.Chip.Pic;
        pic.InitLikeLinux();
        pic.Out(0x21, 0x00);
        int wakes = 0;
        bsp.Wake = () => Interlocked.Increment(ref wakes);

        rig.Chip.SetIrq(1, true); // keyboard
        Assert.True(bsp.HasInterrupt); // even before the APIC is software-enabled, as after firmware
        Assert.False(rig.Apic(1).HasInterrupt); // APs have LINT0 masked
        Assert.Equal(1, Volatile.Read(ref wakes));
        Assert.Equal(0x31, bsp.Acknowledge());
        Assert.False(bsp.HasInterrupt);
        pic.Out(0x20, 0x20);

        bsp.Enable();
        bsp.Write(ApicRegisters.LvtLint0, ApicRegisters.LvtMasked | 0x700);
        rig.Chip.SetIrq(1, false);
        rig.Chip.SetIrq(1, true);
        Assert.True(pic.IntOutput);
        Assert.False(bsp.HasInterrupt);
    }

    [Fact]
    public void Hardware_disabled_apic_passes_the_pic_straight_through()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic bsp = rig.Apic(0);
        bsp.Write(ApicRegisters.LvtLint0, ApicRegisters.LvtMasked); // software-disabled: stays masked
        Assert.True(bsp.TryWriteMsr(0x1B, 0xFEE0_0000)); // EN clear
        Assert.False(bsp.IsHardwareEnabled);
        rig.Chip.Pic.InitLikeLinux();
        rig.Chip.Pic.Out(0x21, 0x00);
        rig.Chip.SetIrq(4, true);
        Assert.True(bsp.HasInterrupt);
        Assert.Equal(0x34, bsp.Acknowledge());
        Assert.True(bsp.TryReadMsr(0x1B, out ulong value));
        Assert.Equal(0xFEE0_0100ul, value); // BSP flag kept
    }

    [Fact]
    public void Partial_and_misaligned_accesses_do_not_corrupt_registers()
    {
        using var rig = new IrqChipRig(cpus: 1);
        LocalApic cpu = rig.Apic(0);
        cpu.Write(ApicRegisters.Tpr + 4, [0x70, 0, 0, 0]);
        cpu.Write(ApicRegisters.Tpr, [0x70]);
        Assert.Equal(0u, cpu.Read(ApicRegisters.Tpr));
        Span<byte> one = stackalloc byte[1];
        cpu.Read(ApicRegisters.Version + 2, one);
        Assert.Equal(0x05, one[0]);
        cpu.Write(0xFF0, [1, 2, 3, 4]);
        Assert.Equal(0u, cpu.Read(0xFF0));
    }
}
