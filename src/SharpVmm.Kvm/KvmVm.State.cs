using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm;

public sealed unsafe partial class KvmVm
{
    /// <summary>KVM_GET_IRQCHIP: the state of the in-kernel master PIC (0), slave PIC (1) or IOAPIC (2).</summary>
    public KvmIrqchip GetIrqchip(uint chipId)
    {
        CheckChip(chipId);
        var chip = new KvmIrqchip { ChipId = chipId };
        if (Libc.Ioctl(Fd, KvmIoctl.GetIrqchip, &chip) < 0) throw KvmException.Ioctl($"KVM_GET_IRQCHIP chip {chipId} (is the irqchip created?)", Libc.LastErrno);
        return chip;
    }

    /// <summary>KVM_SET_IRQCHIP: loads a state read by <see cref="GetIrqchip"/>.</summary>
    public void SetIrqchip(in KvmIrqchip chip)
    {
        CheckChip(chip.ChipId);
        fixed (KvmIrqchip* p = &chip)
            if (Libc.Ioctl(Fd, KvmIoctl.SetIrqchip, p) < 0) throw KvmException.Ioctl($"KVM_SET_IRQCHIP chip {chip.ChipId}", Libc.LastErrno);
    }

    private static void CheckChip(uint chipId)
    {
        if (chipId > KvmIrqchip.IoApic)
            throw new KvmException(KvmErrorKind.InvalidArgument, $"irqchip id {chipId} is not 0 (master PIC), 1 (slave PIC) or 2 (IOAPIC)");
    }

    /// <summary>KVM_GET_PIT2: the in-kernel PIT's counters (needs KVM_CAP_PIT_STATE2).</summary>
    public KvmPitState2 GetPit2()
    {
        KvmPitState2 state;
        if (Libc.Ioctl(Fd, KvmIoctl.GetPit2, &state) < 0) throw KvmException.Ioctl("KVM_GET_PIT2 (is the PIT created?)", Libc.LastErrno);
        return state;
    }

    public void SetPit2(in KvmPitState2 state)
    {
        fixed (KvmPitState2* p = &state)
            if (Libc.Ioctl(Fd, KvmIoctl.SetPit2, p) < 0) throw KvmException.Ioctl("KVM_SET_PIT2", Libc.LastErrno);
    }

    /// <summary>KVM_GET_CLOCK: the VM's kvmclock (ns), which a paravirtual guest's timekeeping follows.</summary>
    public KvmClockData GetClock()
    {
        KvmClockData data;
        if (Libc.Ioctl(Fd, KvmIoctl.GetClock, &data) < 0) throw KvmException.Ioctl("KVM_GET_CLOCK", Libc.LastErrno);
        return data;
    }

    /// <summary>KVM_SET_CLOCK: sets the kvmclock to <paramref name="clockNs"/>, so a restored guest's time goes on from there.</summary>
    public void SetClock(ulong clockNs)
    {
        var data = new KvmClockData { Clock = clockNs };
        if (Libc.Ioctl(Fd, KvmIoctl.SetClock, &data) < 0) throw KvmException.Ioctl("KVM_SET_CLOCK", Libc.LastErrno);
    }
}
