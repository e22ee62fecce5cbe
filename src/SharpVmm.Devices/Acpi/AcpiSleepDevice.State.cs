using SharpVmm.Core.State;

namespace SharpVmm.Devices.Acpi;

public sealed partial class AcpiSleepDevice : IStateful
{
    public string StateId => "acpi-sleep";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_lock)
        {
            w.WriteU8(_status);
            w.WriteI32(IgnoredSleepRequests);
        }
    }

    public void LoadState(StateReader r, int version)
    {
        lock (_lock)
        {
            _status = (byte)(r.ReadU8("sleep status") & WakeStatus);
            IgnoredSleepRequests = r.ReadInt(0, int.MaxValue, "ignored sleep requests");
        }
    }
}
