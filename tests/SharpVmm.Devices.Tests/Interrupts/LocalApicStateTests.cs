using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Interrupts;

namespace SharpVmm.Devices.Tests.Interrupts;

public class LocalApicStateTests
{
    [Fact]
    public void Saved_state_restores_registers_pending_vectors_and_a_running_timer()
    {
        byte[] page = new byte[LocalApic.StateSize];
        using (var source = new IrqChipRig(cpus: 2))
        {
            LocalApic cpu = source.Apic(1);
            cpu.Enable();
            cpu.Write(ApicRegisters.Tpr, 0x20);
            cpu.Write(ApicRegisters.Ldr, 0x04u << 24);
            cpu.Write(ApicRegisters.LvtLint1, 0x400);
            source.Apic(0).Write(ApicRegisters.IcrHigh, 1u << 24);
            source.Apic(0).Write(ApicRegisters.IcrLow, 0x91);
            source.Apic(0).Write(ApicRegisters.IcrLow, 0x52);
            Assert.Equal(0x91, cpu.Acknowledge()); // 0x91 in service, 0x52 still requested
            source.Clock.Pause(); // the count stands at its initial value, however slow the host is
            cpu.Write(ApicRegisters.LvtTimer, 0xEC);
            cpu.Write(ApicRegisters.TimerDivide, 0x0B);
            cpu.Write(ApicRegisters.TimerInitialCount, 30_000_000);
            cpu.SaveState(page);
        }

        using var target = new IrqChipRig(cpus: 2);
        LocalApic restored = target.Apic(1);
        using var woken = new ManualResetEventSlim();
        restored.Wake = woken.Set;
        target.Clock.Pause(); // hold time still so the restored count can be compared exactly
        restored.LoadState(page);

        Assert.Equal(1u << 24, restored.Read(ApicRegisters.Id));
        Assert.Equal(0x20u, restored.Read(ApicRegisters.Tpr));
        Assert.Equal(0x04u << 24, restored.Read(ApicRegisters.Ldr));
        Assert.Equal(0x1FFu, restored.Read(ApicRegisters.Svr));
        Assert.Equal(0x400u, restored.Read(ApicRegisters.LvtLint1));
        Assert.True(restored.IsrBit(0x91));
        Assert.True(restored.IrrBit(0x52));
        Assert.Equal(30_000_000u, restored.Read(ApicRegisters.TimerInitialCount));
        uint saved = BitConverter.ToUInt32(page, (int)ApicRegisters.TimerCurrentCount);
        Assert.Equal(30_000_000u, saved);
        Assert.Equal(saved, restored.Read(ApicRegisters.TimerCurrentCount));
        target.Clock.Resume();
        target.Timers.Kick();

        Assert.True(woken.Wait(TimeSpan.FromSeconds(10))); // the timer keeps running after the restore
        restored.Write(ApicRegisters.Eoi, 0); // ends 0x91
        Assert.Equal(0xEC, restored.Acknowledge());
        restored.Write(ApicRegisters.Eoi, 0);
        Assert.Equal(0x52, restored.Acknowledge());
    }

    [Fact]
    public void Short_state_buffer_is_rejected()
    {
        using var rig = new IrqChipRig(cpus: 1);
        Assert.Throws<ArgumentException>(() => rig.Apic(0).SaveState(new byte[100]));
        Assert.Throws<ArgumentException>(() => rig.Apic(0).LoadState(new byte[100]));
    }
}

/// <summary>The KVM-layout register page in x2APIC mode (KVM_X2APIC_API_USE_32BIT_IDS form).</summary>
public class LocalApicX2ApicStateTests
{
    private const uint Base = 0x1B, MsrSvr = 0x80F, MsrTpr = 0x808, MsrIcr = 0x830, MsrLdr = 0x80D, MsrId = 0x802;
    private const ulong X2Apic = 0xFEE0_0C00;

    private static void ToX2Apic(LocalApic apic)
    {
        Assert.Equal(ApicMsrResult.Done, apic.WriteMsr(Base, X2Apic | (apic.IsBootstrapProcessor ? 0x100u : 0)));
        Assert.Equal(ApicMsrResult.Done, apic.WriteMsr(MsrSvr, 0x1FF));
    }

    private static uint At(byte[] page, uint offset) => BitConverter.ToUInt32(page, (int)offset);

    [Fact]
    public void In_x2apic_mode_the_page_holds_the_32_bit_id_the_derived_ldr_and_the_32_bit_icr_destination()
    {
        using var rig = new IrqChipRig(cpus: 20);
        LocalApic cpu = rig.Apic(19);
        ToX2Apic(cpu);
        Assert.Equal(ApicMsrResult.Done, cpu.WriteMsr(MsrTpr, 0x40));
        // A fixed IPI to an x2APIC ID no CPU has: only the ICR's contents matter here.
        Assert.Equal(ApicMsrResult.Done, cpu.WriteMsr(MsrIcr, (0x0001_2345UL << 32) | 0x61));
        byte[] page = new byte[LocalApic.StateSize];
        cpu.SaveState(page);
        Assert.Equal(19u, At(page, ApicRegisters.Id));                        // not 19 << 24
        Assert.Equal((1u << 16) | (1u << 3), At(page, ApicRegisters.Ldr));    // cluster 1, member 3
        Assert.Equal(0x61u, At(page, ApicRegisters.IcrLow));
        Assert.Equal(0x0001_2345u, At(page, ApicRegisters.IcrHigh));
        Assert.Equal(0x40u, At(page, ApicRegisters.Tpr));

        using var target = new IrqChipRig(cpus: 20);
        LocalApic restored = target.Apic(19);
        ToX2Apic(restored); // IA32_APIC_BASE first, as with KVM_SET_LAPIC
        page[(int)ApicRegisters.Ldr] ^= 0xFF; // the LDR is derived in x2APIC mode, whatever the page says
        restored.LoadState(page);
        Assert.Equal(19UL, Read(restored, MsrId));
        Assert.Equal((1UL << 16) | (1UL << 3), Read(restored, MsrLdr));
        Assert.Equal(0x40UL, Read(restored, MsrTpr));
        Assert.Equal((0x0001_2345UL << 32) | 0x61, Read(restored, MsrIcr));
        byte[] again = new byte[LocalApic.StateSize];
        restored.SaveState(again);
        page[(int)ApicRegisters.Ldr] ^= 0xFF;
        Assert.Equal(page, again);
    }

    [Fact]
    public void An_x2apic_page_for_another_apic_id_is_refused()
    {
        using var rig = new IrqChipRig(cpus: 2);
        byte[] page = new byte[LocalApic.StateSize];
        ToX2Apic(rig.Apic(0));
        rig.Apic(0).SaveState(page);
        ToX2Apic(rig.Apic(1));
        var e = Assert.Throws<ArgumentException>(() => rig.Apic(1).LoadState(page));
        Assert.Contains("x2APIC ID is 1", e.Message);
        Assert.Equal(1UL, Read(rig.Apic(1), MsrId));
    }

    [Fact]
    public void An_xapic_page_keeps_the_id_in_bits_31_to_24_and_refuses_the_broadcast_id()
    {
        using var rig = new IrqChipRig(cpus: 2);
        byte[] page = new byte[LocalApic.StateSize];
        rig.Apic(1).SaveState(page);
        Assert.Equal(1u << 24, At(page, ApicRegisters.Id));
        page[(int)ApicRegisters.Id + 3] = 0xFF;
        Assert.Throws<ArgumentException>(() => rig.Apic(1).LoadState(page));
    }

    private static ulong Read(LocalApic apic, uint msr)
    {
        Assert.Equal(ApicMsrResult.Done, apic.ReadMsr(msr, out ulong v));
        return v;
    }
}
