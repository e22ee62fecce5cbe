using SharpVmm.Core.State;

namespace SharpVmm.Devices.Timers;

/// <summary>Port 0x61's stored bits; channel 2's gate itself travels with the PIT.</summary>
public sealed partial class SystemControlPort : IStateful
{
    public string StateId => "port61";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_gate) w.WriteU8(_stored);
    }

    public void LoadState(StateReader r, int version)
    {
        lock (_gate) _stored = (byte)(r.ReadU8("port 0x61 bits") & 0x0F);
    }
}
