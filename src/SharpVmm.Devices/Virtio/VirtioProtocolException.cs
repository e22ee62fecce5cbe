using SharpVmm.Core;

namespace SharpVmm.Devices.Virtio;

/// <summary>
/// A request the device cannot even answer (for example a block request with no byte for its status). Like
/// <see cref="VirtqueueException"/>, the transport turns it into DEVICE_NEEDS_RESET.
/// </summary>
public sealed class VirtioProtocolException(string message) : VmmException(message);
