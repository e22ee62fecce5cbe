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
