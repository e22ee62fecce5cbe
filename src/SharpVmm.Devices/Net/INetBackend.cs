namespace SharpVmm.Devices.Net;

/// <summary>Receives one Ethernet frame from a backend; the span is only valid during the call.</summary>
public delegate void NetFrameHandler(ReadOnlySpan<byte> frame);

/// <summary>
/// Where a virtual NIC's Ethernet frames go and come from (a TAP device, a user-mode TCP/IP stack). Frames are plain
/// Ethernet (no virtio header, no FCS). <see cref="Send"/> may be called from any thread, one call at a time; received
/// frames arrive on a thread of the backend's own, after <see cref="Start"/>.
/// </summary>
public interface INetBackend : IDisposable
{
    /// <summary>What the backend is, for logs and messages (e.g. <c>tap tap0</c>).</summary>
    string Description { get; }

    /// <summary>Starts delivering received frames to <paramref name="receive"/>. Called once.</summary>
    void Start(NetFrameHandler receive);

    /// <summary>Sends one frame from the guest; the backend copies what it keeps. Never blocks for long: a frame it cannot take now is dropped.</summary>
    void Send(ReadOnlySpan<byte> frame);
}
