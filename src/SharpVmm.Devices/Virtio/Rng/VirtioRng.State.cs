using SharpVmm.Core.State;

namespace SharpVmm.Devices.Virtio.Rng;

/// <summary>Entropy requests complete at once, so the device has no state beyond its transport's.</summary>
public sealed partial class VirtioRng : IStateful
{
    public string StateId => "virtio-rng";
    public int StateVersion => 1;
    public void SaveState(StateWriter w) { }
    public void LoadState(StateReader r, int version) { }
}
