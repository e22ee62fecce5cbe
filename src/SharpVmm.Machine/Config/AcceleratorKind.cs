namespace SharpVmm.Machine.Config;

public enum AcceleratorKind
{
    /// <summary>KVM where it can run the guest, the emulator otherwise; the choice is logged.</summary>
    Auto,
    Kvm,
    Emu,
}
