using SharpVmm.Block;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine;

/// <summary>
/// A disk as management sees it: the drive QEMU would call <see cref="DriveId"/> (<c>-drive if=virtio</c> names its
/// drives virtio0, virtio1, ...), the device it is attached to, what the user asked for and the open image chain.
/// The builder registers one in <see cref="VirtualMachine.Devices"/> under "<c>DEVICE.drive</c>" beside each
/// virtio-blk device; query-block and <c>info block</c> read them there.
/// </summary>
public sealed partial record BlockDeviceInfo(string DriveId, string DeviceId, DiskSpec Spec, IBlockImage Image)
{
    /// <summary>The id the record is registered under in <see cref="VirtualMachine.Devices"/>.</summary>
    public string RegistrationId => DeviceId + ".drive";

    public bool ReadOnly => Spec.ReadOnly || Image.IsReadOnly;

    /// <summary>What the guest's device has done with the disk (query-blockstats).</summary>
    public BlockStats Stats { get; init; } = new();
}
