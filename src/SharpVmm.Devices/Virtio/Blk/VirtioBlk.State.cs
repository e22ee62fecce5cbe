using SharpVmm.Core.State;

namespace SharpVmm.Devices.Virtio.Blk;

/// <summary>
/// A block device keeps nothing between requests once the VM is paused (pause waits for the I/O thread: see
/// VirtualMachine.Pause), so its section only records what the guest saw of the disk: a restore onto another size or
/// mode is refused.
/// </summary>
public sealed partial class VirtioBlk : IStateful
{
    public string StateId => "virtio-blk";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        w.WriteU64(CapacitySectors);
        w.WriteBool(ReadOnly);
        w.WriteRaw(_id);
    }

    public void LoadState(StateReader r, int version)
    {
        ulong sectors = r.ReadU64("capacity");
        bool readOnly = r.ReadBool("read-only");
        Span<byte> id = stackalloc byte[IdBytesLength];
        r.ReadRaw(id, "serial");
        if (sectors != CapacitySectors)
            throw r.Error($"the guest saw a disk of {sectors} sectors, '{_image.Path}' has {CapacitySectors}: attach the same disk");
        if (readOnly != ReadOnly)
            throw r.Error($"the guest saw a {(readOnly ? "read-only" : "writable")} disk, '{_image.Path}' is {(ReadOnly ? "read-only" : "writable")} here");
        if (!id.SequenceEqual(_id)) throw r.Error("the disk's serial differs from the saved one: attach the disks in the same order");
    }

    private int IdBytesLength => _id.Length;
}
