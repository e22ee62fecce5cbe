using SharpVmm.Memory;

namespace SharpVmm.Devices.Virtio;

/// <summary>What an activated device works with: guest RAM, its queues, the negotiated features, and its interrupt.</summary>
public sealed class VirtioDeviceContext
{
    private readonly VirtioMmioTransport _transport;

    internal VirtioDeviceContext(VirtioMmioTransport transport, GuestMemory memory, Virtqueue[] queues, ulong features)
    {
        _transport = transport;
        Memory = memory;
        Queues = queues;
        Features = features;
    }

    public GuestMemory Memory { get; }
    public IReadOnlyList<Virtqueue> Queues { get; }
    public ulong Features { get; }
    public bool HasFeature(int bit) => (Features & (1UL << bit)) != 0;

    /// <summary>Interrupts the driver for <paramref name="queue"/>'s new used entries, unless it suppressed that.</summary>
    public void SignalUsed(Virtqueue queue)
    {
        if (queue.ShouldInterrupt()) _transport.RaiseInterrupt(VirtioMmioTransport.InterruptUsedBuffer);
    }

    /// <summary>The device changed its configuration space: bumps ConfigGeneration and interrupts.</summary>
    public void SignalConfigChange() => _transport.ConfigChanged();

    /// <summary>
    /// Runs device work that starts outside a guest access (input arriving on a backend thread) under the transport's
    /// lock, as register accesses and notifications are. Skipped once the driver reset the device or it needs a reset;
    /// a failure sets DEVICE_NEEDS_RESET like one during a notification.
    /// </summary>
    public void RunExclusive(Action<VirtioDeviceContext> work) => _transport.RunExclusive(this, work);

    /// <summary>
    /// Runs queue work on a device's own thread (an I/O worker) without the register lock, so the vCPUs go on while
    /// it runs: <paramref name="work"/> may pop, serve and complete chains. It runs under the transport's queue lock,
    /// which a device or queue reset also takes: a reset waits for the work in flight, and the work is skipped
    /// (false) once the driver reset the device or it needs a reset. A failure sets DEVICE_NEEDS_RESET. Returns what
    /// <paramref name="work"/> returned. Never call it from inside a register access or notification.
    /// </summary>
    public bool RunQueueWork(Func<VirtioDeviceContext, bool> work) => _transport.RunQueueWork(this, work);

    /// <summary>False once the driver reset the device or it needs a reset: this context is then finished.</summary>
    public bool IsLive => _transport.IsLive(this);

    /// <summary>
    /// The usual service loop: pops every available chain, lets <paramref name="handle"/> answer it (returning the
    /// bytes it wrote), completes it, re-enables notifications without losing a race, then interrupts if wanted.
    /// </summary>
    public void Drain(Virtqueue queue, ChainHandler handle)
    {
        do
        {
            queue.DisableNotifications();
            while (queue.TryPop(out var chain))
                queue.AddUsed(chain.Head, handle(chain));
        } while (queue.EnableNotifications());
        SignalUsed(queue);
    }
}

/// <summary>Serves one request; returns the number of bytes written into the chain's device-writable buffers.</summary>
public delegate uint ChainHandler(DescriptorChain chain);
