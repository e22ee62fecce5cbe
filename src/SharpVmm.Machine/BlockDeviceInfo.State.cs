using SharpVmm.Core.State;

namespace SharpVmm.Machine;

/// <summary>
/// A drive record has no guest-visible state of its own (the virtio-blk device and the image carry that); its section
/// only makes sure a restore attaches the disks under the same drive names in the same order.
/// </summary>
public sealed partial record BlockDeviceInfo : IStateful
{
    public string StateId => "drive";
    public int StateVersion => 1;

    public void SaveState(StateWriter w) => w.WriteString(DriveId);

    public void LoadState(StateReader r, int version)
    {
        string saved = r.ReadString(64, "drive id");
        if (saved != DriveId) throw r.Error($"the saved drive was '{saved}', here it is '{DriveId}': attach the disks in the same order");
    }
}
