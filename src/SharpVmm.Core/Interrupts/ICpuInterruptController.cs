namespace SharpVmm.Core.Interrupts;

/// <summary>
/// The interrupt controller as one emulated CPU sees it (its local APIC, or the PIC in front of it).
/// Used by the emu accelerator only: KVM's in-kernel irqchip plays this role there.
/// </summary>
public interface ICpuInterruptController
{
    /// <summary>A maskable external interrupt is ready to be taken when RFLAGS.IF allows. One volatile load.</summary>
    bool HasInterrupt { get; }

    /// <summary>The INTA cycle: returns the vector to deliver and marks it in service, or -1 if it went away.</summary>
    int Acknowledge();

    /// <summary>Called by the controller (any thread) when <see cref="HasInterrupt"/> may have become true, to wake a halted CPU.</summary>
    Action? Wake { get; set; }
}
