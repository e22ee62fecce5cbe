using SharpVmm.Core.State;
using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm;

/// <summary>
/// What lives in the kernel outside the vCPUs (whose state goes through GetState/SetState): with the in-kernel
/// irqchip, both PICs, the IOAPIC and the PIT; and the kvmclock, which a paravirtual guest's timekeeping follows.
/// </summary>
public sealed unsafe partial class KvmAccelerator : IStateful
{
    public string StateId => "kvm";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        w.WriteBool(Options.IrqChip);
        if (Options.IrqChip)
        {
            for (uint id = KvmIrqchip.PicMaster; id <= KvmIrqchip.IoApic; id++)
            {
                var chip = Vm.GetIrqchip(id);
                w.WriteRaw(new ReadOnlySpan<byte>(chip.Chip, KvmIrqchip.ChipBytes));
            }
            bool pit = Vm.HasCapability(KvmCap.PitState2);
            w.WriteBool(pit);
            if (pit)
            {
                var state = Vm.GetPit2();
                w.WriteRaw(new ReadOnlySpan<byte>(&state, KvmPitState2.Size));
            }
        }
        bool clock = Vm.HasCapability(KvmCap.AdjustClock);
        w.WriteBool(clock);
        if (clock) w.WriteU64(Vm.GetClock().Clock);
    }

    public void LoadState(StateReader r, int version)
    {
        bool irqchip = r.ReadBool("in-kernel irqchip");
        if (irqchip != Options.IrqChip)
            throw r.Error($"the saved VM {(irqchip ? "had" : "had no")} in-kernel irqchip, this one {(Options.IrqChip ? "has one" : "has none")}: boot the same kind of guest (--kernel or --flat)");
        if (irqchip)
        {
            for (uint id = KvmIrqchip.PicMaster; id <= KvmIrqchip.IoApic; id++)
            {
                var chip = new KvmIrqchip { ChipId = id };
                r.ReadRaw(new Span<byte>(chip.Chip, KvmIrqchip.ChipBytes), $"irqchip {id}");
                Vm.SetIrqchip(chip);
            }
            if (r.ReadBool("PIT state present"))
            {
                KvmPitState2 state;
                r.ReadRaw(new Span<byte>(&state, KvmPitState2.Size), "PIT state");
                Vm.SetPit2(state);
            }
        }
        if (r.ReadBool("kvmclock present"))
        {
            ulong ns = r.ReadU64("kvmclock");
            if (Vm.HasCapability(KvmCap.AdjustClock)) Vm.SetClock(ns);
        }
    }
}
