using SharpVmm.Core;

namespace SharpVmm.Devices.Virtio;

/// <summary>What a guest did wrong with a virtqueue.</summary>
public enum VirtqueueError
{
    /// <summary>Queue size, alignment or ring placement the spec forbids, found when the driver set QueueReady.</summary>
    BadQueueLayout,
    /// <summary>The avail index moved forward by more than the queue size since the device last looked.</summary>
    AvailIndexJump,
    /// <summary>A head or NEXT index is not below the queue size (or the indirect table's length).</summary>
    DescriptorIndexOutOfRange,
    /// <summary>A NEXT chain came back to a descriptor it already visited.</summary>
    DescriptorLoop,
    /// <summary>More descriptors in one chain than the queue (or the indirect limit) allows.</summary>
    ChainTooLong,
    /// <summary>A buffer, ring or indirect table lies outside guest RAM, or its address plus length overflows.</summary>
    AddressOutsideRam,
    /// <summary>A device-readable descriptor follows a device-writable one.</summary>
    WrongDirection,
    /// <summary>INDIRECT used without the negotiated feature, together with NEXT, with a bad length, or nested.</summary>
    BadIndirect,
    /// <summary>The device was asked to complete a head it never handed out, or more than the ring holds.</summary>
    BadUsedEntry,
}

/// <summary>
/// A guest's virtqueue contents break the split-ring rules. The queue is unusable afterwards: the transport sets
/// DEVICE_NEEDS_RESET and raises a configuration-change interrupt, and the driver must reset the device.
/// </summary>
public sealed class VirtqueueException(VirtqueueError error, string message) : VmmException(message)
{
    public VirtqueueError Error { get; } = error;
}
