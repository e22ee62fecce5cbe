using SharpVmm.Core.State;

namespace SharpVmm.Devices.Interrupts;

/// <summary>
/// The whole emulated interrupt fabric as one section, because its parts are coupled (the PIC's output is every
/// LAPIC's LINT0, GSI 0 and 2 share IOAPIC pin 2): the 8259 pair with ELCR, the IOAPIC's redirection table and pin
/// levels, and each vCPU's LAPIC with its timer.
/// </summary>
public sealed partial class EmulatedIrqChip : IStateful
{
    public string StateId => "emulated-irqchip";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_pin2Gate)
        {
            w.WriteBool(_gsi0Level);
            w.WriteBool(_gsi2Level);
        }
        Pic.Save(w);
        IoApic.Save(w);
        w.WriteI32(_apics.Length);
        foreach (var apic in _apics) apic.SaveFull(w);
    }

    public void LoadState(StateReader r, int version)
    {
        lock (_pin2Gate)
        {
            _gsi0Level = r.ReadBool("GSI 0 level");
            _gsi2Level = r.ReadBool("GSI 2 level");
        }
        Pic.Load(r);
        IoApic.Load(r);
        int n = r.ReadI32("LAPIC count");
        if (n != _apics.Length) throw r.Error($"the saved machine has {n} local APICs, this one {_apics.Length}");
        foreach (var apic in _apics) apic.LoadFull(r);
    }
}
