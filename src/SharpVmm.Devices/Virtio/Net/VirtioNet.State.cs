using SharpVmm.Core.State;

namespace SharpVmm.Devices.Virtio.Net;

/// <summary>
/// A NIC's state is its address and link: frames waiting for guest buffers are not kept (a network drops packets, and
/// the guest's TCP retransmits), as QEMU does when it migrates a NIC.
/// </summary>
public sealed partial class VirtioNet : IStateful
{
    public string StateId => "virtio-net";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        w.WriteRaw(_mac);
        w.WriteBool(_linkUp);
    }

    public void LoadState(StateReader r, int version)
    {
        Span<byte> mac = stackalloc byte[6];
        r.ReadRaw(mac, "MAC address");
        bool link = r.ReadBool("link state");
        if (!mac.SequenceEqual(_mac))
            throw r.Error($"the guest's NIC had MAC {Convert.ToHexString(mac)}, this one has {Convert.ToHexString(_mac)}: give the same mac= (or the same --net order)");
        _linkUp = link;
        lock (_pendingLock) _pending.Clear();
    }
}
