using SharpVmm.Core.State;
using SharpVmm.Kvm.Interop;
using SharpVmm.Kvm.Tests.Support;

namespace SharpVmm.Kvm.Tests;

/// <summary>The accelerator's own saved state: in-kernel PICs, IOAPIC, PIT and kvmclock carried into another VM.</summary>
public sealed unsafe class StateSaveTests
{
    private static byte[] Chip(KvmVm vm, uint id)
    {
        var c = vm.GetIrqchip(id);
        return new ReadOnlySpan<byte>(c.Chip, KvmIrqchip.ChipBytes).ToArray();
    }

    [KvmFact]
    public void The_in_kernel_irqchip_pit_and_clock_move_to_a_new_vm()
    {
        using var a = new KvmTestGuest(new KvmOptions { IrqChip = true });
        a.Accelerator.SetIrq(4, true);   // PIC IRR bit 4 and IOAPIC pin 4 (its irr) go up
        a.Accelerator.SetIrq(12, true);
        // PIT channel 0 as Linux programs it, straight into the kernel's state: mode 2, count 1193.
        var pit = a.Accelerator.Vm.GetPit2();
        var ch0 = (KvmPitChannelState*)pit.Channels;
        ch0->Count = 1193; ch0->Mode = 2; ch0->RwMode = 3; ch0->Gate = 1;
        a.Accelerator.Vm.SetPit2(pit);

        // Read before the save: the saved clock is at least this, and the restored one runs on from the saved one.
        Thread.Sleep(200); // so that "continues" is told apart from a fresh VM's clock starting near zero
        ulong clockBefore = a.Accelerator.Vm.GetClock().Clock;
        var w = new StateWriter();
        a.Accelerator.SaveState(w);
        byte[] saved = w.ToArray();
        byte[] master = Chip(a.Accelerator.Vm, KvmIrqchip.PicMaster), slave = Chip(a.Accelerator.Vm, KvmIrqchip.PicSlave);
        byte[] ioapic = Chip(a.Accelerator.Vm, KvmIrqchip.IoApic);
        Assert.NotEqual(0, master[1] & 0x10); // kvm_pic_state.irr: IRQ 4 requested

        using var b = new KvmTestGuest(new KvmOptions { IrqChip = true });
        Assert.NotEqual(master, Chip(b.Accelerator.Vm, KvmIrqchip.PicMaster));
        var r = new StateReader(saved);
        b.Accelerator.LoadState(r, a.Accelerator.StateVersion);
        r.ExpectEnd();
        Assert.Equal(master, Chip(b.Accelerator.Vm, KvmIrqchip.PicMaster));
        Assert.Equal(slave, Chip(b.Accelerator.Vm, KvmIrqchip.PicSlave));
        Assert.Equal(ioapic, Chip(b.Accelerator.Vm, KvmIrqchip.IoApic));
        var pitB = b.Accelerator.Vm.GetPit2();
        var chB = (KvmPitChannelState*)pitB.Channels;
        Assert.Equal((1193u, (byte)2, (byte)3), (chB->Count, chB->Mode, chB->RwMode));
        if (b.Accelerator.Vm.HasCapability(KvmCap.AdjustClock))
        {
            // The new VM's kvmclock continues from the saved one instead of starting again at zero.
            ulong clockAfter = b.Accelerator.Vm.GetClock().Clock;
            Assert.InRange(clockAfter, clockBefore, clockBefore + 10_000_000_000);
        }
    }

    [KvmFact]
    public void A_vm_without_irqchip_refuses_state_that_had_one()
    {
        using var a = new KvmTestGuest(new KvmOptions { IrqChip = true });
        var w = new StateWriter();
        a.Accelerator.SaveState(w);
        using var b = new KvmTestGuest();
        var e = Assert.Throws<StateFormatException>(() => b.Accelerator.LoadState(new StateReader(w.ToArray()), 1));
        Assert.Contains("in-kernel irqchip", e.Message);
        Assert.Throws<StateFormatException>(() => a.Accelerator.LoadState(new StateReader(w.ToArray()[..100]), 1));
    }
}
