namespace SharpVmm.Devices.Virtio;

/// <summary>
/// A virtio device type (block, rng, ...) as a transport drives it. The transport owns the queues and the
/// negotiation; the device sees them once the driver sets DRIVER_OK. All calls come from the transport, serialised.
/// </summary>
public interface IVirtioDevice
{
    /// <summary>Virtio device ID (2 block, 3 console, 4 entropy).</summary>
    uint DeviceId { get; }
    /// <summary>Feature bits offered; must include <see cref="VirtioFeatures.Version1"/>.</summary>
    ulong Features { get; }
    int QueueCount { get; }
    /// <summary>Largest size (a power of 2) the driver may give queue <paramref name="queue"/>.</summary>
    ushort MaxQueueSize(int queue);
    /// <summary>Bytes of device-specific configuration space.</summary>
    int ConfigSize { get; }
    /// <summary>Reads config bytes [offset, offset+data.Length), which lie inside <see cref="ConfigSize"/>.</summary>
    void ReadConfig(int offset, Span<byte> data);
    void WriteConfig(int offset, ReadOnlySpan<byte> data);
    /// <summary>The driver set DRIVER_OK: the negotiated features and the ready queues are in <paramref name="context"/>.</summary>
    void Activate(VirtioDeviceContext context);
    /// <summary>The driver reset the device (or it was never activated): forget the context.</summary>
    void Reset();
    /// <summary>The driver notified queue <paramref name="queue"/>. May throw <see cref="VirtqueueException"/> or <see cref="VirtioProtocolException"/>.</summary>
    void QueueNotify(int queue);
}
