namespace SharpVmm.Core.Cpu;

/// <summary>
/// What runs guest code: KVM or the emulator. Created over a VM's <see cref="Memory.GuestMemory"/> and
/// <see cref="Io.IIoBus"/> (each accelerator's own factory takes those), it makes the vCPUs.
/// </summary>
public interface IAccelerator : IDisposable
{
    /// <summary>"kvm" or "emu", as the command line names it.</summary>
    string Name { get; }

    IVcpu CreateVcpu(int index);

    /// <summary>The GSI router interrupts from devices go through (KVM's in-kernel irqchip, or the emulated PIC/IOAPIC).</summary>
    Interrupts.IIrqRouter? IrqRouter { get; }

    /// <summary>The accelerator's own record of guest stores, or null when every store reaches <see cref="SharpVmm.Memory.MemoryRegion.Dirty"/> (the emulator).</summary>
    IDirtyLog? DirtyLog => null;
}
