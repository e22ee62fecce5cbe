namespace SharpVmm.Core.Interrupts;

/// <summary>Sets the level of a global system interrupt (GSI) input: KVM_IRQ_LINE on KVM, the emulated PIC/IOAPIC on emu.</summary>
public interface IIrqRouter
{
    void SetIrq(int gsi, bool level);
}
