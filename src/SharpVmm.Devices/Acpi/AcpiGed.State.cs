using SharpVmm.Core.State;

namespace SharpVmm.Devices.Acpi;

public sealed partial class AcpiGed : IStateful
{
    public string StateId => "acpi-ged";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_lock) w.WriteU32(_pending);
    }

    /// <summary>Pending events keep the line up, as they did when saved.</summary>
    public void LoadState(StateReader r, int version)
    {
        lock (_lock)
        {
            _pending = r.ReadU32("GED pending events");
            if (_pending != 0) _line.Raise();
            else _line.Lower();
        }
    }
}
