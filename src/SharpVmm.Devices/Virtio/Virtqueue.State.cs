using SharpVmm.Core.State;

namespace SharpVmm.Devices.Virtio;

public sealed partial class Virtqueue
{
    /// <summary>
    /// The queue's programming and ring positions. Requests are served synchronously under the transport's lock, so
    /// with the VM paused none is in flight; one that is would be lost, so saving refuses it.
    /// </summary>
    internal void Save(StateWriter w, string owner)
    {
        int inFlight = 0;
        foreach (bool b in _inFlight) if (b) inFlight++;
        if (inFlight != 0)
            throw new StateFormatException($"{owner}: {inFlight} request(s) are still in flight; the device must finish them before its state is saved");
        w.WriteU16(MaxSize);
        w.WriteU16(Size);
        w.WriteU64(DescTableAddress); w.WriteU64(AvailRingAddress); w.WriteU64(UsedRingAddress);
        w.WriteBool(IsActive); w.WriteBool(EventIdx); w.WriteBool(IndirectDescriptors);
        w.WriteU16(_lastAvail); w.WriteU16(_nextUsed); w.WriteU16(_signalledUsed);
    }

    internal void Load(StateReader r)
    {
        ushort max = r.ReadU16("queue maximum size");
        if (max != MaxSize) throw r.Error($"the saved queue could hold {max} entries, this device's holds {MaxSize}");
        Size = r.ReadU16("queue size");
        DescTableAddress = r.ReadU64("descriptor table address");
        AvailRingAddress = r.ReadU64("available ring address");
        UsedRingAddress = r.ReadU64("used ring address");
        bool active = r.ReadBool("queue ready");
        bool eventIdx = r.ReadBool("EVENT_IDX"), indirect = r.ReadBool("INDIRECT_DESC");
        ushort lastAvail = r.ReadU16("last available index"), nextUsed = r.ReadU16("next used index"), signalled = r.ReadU16("signalled used index");
        Array.Clear(_inFlight);
        IsActive = false;
        if (active)
        {
            // The same checks as when the driver made it ready: a saved layout must still lie inside RAM.
            try
            {
                ulong features = (eventIdx ? VirtioFeatures.EventIdx : 0) | (indirect ? VirtioFeatures.IndirectDesc : 0);
                Activate(features);
            }
            catch (VirtqueueException e)
            {
                throw r.Error($"the saved queue layout is invalid here: {e.Message}");
            }
        }
        _lastAvail = lastAvail; _nextUsed = nextUsed; _signalledUsed = signalled;
    }
}
