using System.Buffers;
using System.Buffers.Binary;
using SharpVmm.Devices.Net;
using static SharpVmm.Devices.Virtio.Net.VirtioNetConstants;

namespace SharpVmm.Devices.Virtio.Net;

/// <summary>
/// virtio-net (device ID 1), one queue pair on an <see cref="INetBackend"/>: queue 0 receives, queue 1 transmits.
/// Offers MAC and link STATUS, no checksum offload or segmentation, so every frame is a complete Ethernet frame behind
/// a zeroed 12-byte header. Transmit runs on the notifying vCPU's thread. Received frames arrive on the backend's
/// thread, wait in a bounded queue and are copied into the driver's receive buffers under the transport's lock, both
/// when they arrive and when the driver adds buffers. Frames that do not fit (too big, queue full, buffer too small,
/// link down, device not started) are dropped and counted: a network may lose frames, a VMM must not fall over.
/// </summary>
public sealed partial class VirtioNet : IVirtioDevice, IDisposable
{
    public const ushort QueueSize = 256;
    /// <summary>Largest Ethernet frame carried either way: a 64 KiB MTU plus Ethernet and VLAN headers.</summary>
    public const int MaxFrameSize = 65536 + 18;
    /// <summary>Received frames held while the driver has no receive buffer; more are dropped (as a NIC's FIFO overruns).</summary>
    public const int MaxPendingFrames = 256;
    private const int ReceiveQueue = 0, TransmitQueue = 1;

    private readonly INetBackend _backend;
    private readonly byte[] _mac = new byte[6];
    private readonly byte[] _txBuffer = new byte[HeaderSize + MaxFrameSize];
    private readonly Queue<(byte[] Data, int Length)> _pending = new();
    private readonly object _pendingLock = new();
    private readonly ChainHandler _transmit;
    private readonly Action<VirtioDeviceContext> _deliver;
    private readonly Action<VirtioDeviceContext> _linkChanged;
    private VirtioDeviceContext? _context;
    private bool _started;
    private volatile bool _linkUp = true;
    private long _txFrames, _txBytes, _txDropped, _rxFrames, _rxBytes, _rxDropped;

    public VirtioNet(INetBackend backend, MacAddress mac)
    {
        _backend = backend;
        Mac = mac;
        mac.CopyTo(_mac);
        _transmit = Transmit;
        _deliver = Deliver;
        _linkChanged = c => c.SignalConfigChange();
    }

    public MacAddress Mac { get; }
    public INetBackend Backend => _backend;

    /// <summary>Frames sent to the backend and their bytes (without the virtio header).</summary>
    public long TxFrames => Interlocked.Read(ref _txFrames);
    public long TxBytes => Interlocked.Read(ref _txBytes);
    /// <summary>Guest frames not sent: malformed (short header, GSO not negotiated, shorter than an Ethernet header), oversized, or link down.</summary>
    public long TxDropped => Interlocked.Read(ref _txDropped);
    /// <summary>Frames placed in the driver's receive buffers and their bytes.</summary>
    public long RxFrames => Interlocked.Read(ref _rxFrames);
    public long RxBytes => Interlocked.Read(ref _rxBytes);
    /// <summary>Backend frames not delivered: oversized or runt, queue full, receive buffer too small, link down, or no driver yet.</summary>
    public long RxDropped => Interlocked.Read(ref _rxDropped);

    /// <summary>The link state the driver reads in config space; a change interrupts it (as a cable pulled or plugged).</summary>
    public bool LinkUp
    {
        get => _linkUp;
        set
        {
            if (_linkUp == value) return;
            _linkUp = value;
            Volatile.Read(ref _context)?.RunExclusive(_linkChanged);
        }
    }

    public uint DeviceId => 1;
    public ulong Features => VirtioFeatures.Common | 1UL << FeatureMac | 1UL << FeatureStatus;
    public int QueueCount => 2;
    public ushort MaxQueueSize(int queue) => QueueSize;
    public int ConfigSize => ConfigBytes;

    public void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> c = stackalloc byte[ConfigBytes];
        _mac.CopyTo(c);
        BinaryPrimitives.WriteUInt16LittleEndian(c[6..], _linkUp ? StatusLinkUp : (ushort)0);
        BinaryPrimitives.WriteUInt16LittleEndian(c[8..], 1);
        c.Slice(offset, data.Length).CopyTo(data);
    }

    // The MAC is writable only with the legacy interface or CTRL_MAC_ADDR, which we do not offer: writes are ignored.
    public void WriteConfig(int offset, ReadOnlySpan<byte> data) { }

    public void Activate(VirtioDeviceContext context)
    {
        Volatile.Write(ref _context, context);
        if (!_started)
        {
            _started = true;
            _backend.Start(OnFrame);
        }
    }

    public void Reset()
    {
        Volatile.Write(ref _context, null);
        lock (_pendingLock)
        {
            while (_pending.TryDequeue(out var p)) ArrayPool<byte>.Shared.Return(p.Data);
        }
    }

    public void QueueNotify(int queue)
    {
        if (_context is not { } c) return;
        if (queue == TransmitQueue) c.Drain(c.Queues[TransmitQueue], _transmit);
        else if (queue == ReceiveQueue) _deliver(c);
    }

    private uint Transmit(DescriptorChain chain)
    {
        ulong length = chain.ReadableLength;
        if (length < HeaderSize + EthernetHeaderSize || length > HeaderSize + MaxFrameSize || !_linkUp)
        {
            Interlocked.Increment(ref _txDropped);
            return 0;
        }
        int n = chain.ReadFrom(0, _txBuffer.AsSpan(0, (int)length));
        // Without negotiated offloads a segmentation request cannot be honoured: the frame is not a frame.
        if (_txBuffer[HeaderGsoTypeOffset] != GsoNone)
        {
            Interlocked.Increment(ref _txDropped);
            return 0;
        }
        var frame = _txBuffer.AsSpan(HeaderSize, n - HeaderSize);
        _backend.Send(frame);
        Interlocked.Increment(ref _txFrames);
        Interlocked.Add(ref _txBytes, frame.Length);
        return 0;
    }

    private void OnFrame(ReadOnlySpan<byte> frame)
    {
        var context = Volatile.Read(ref _context);
        if (context is null || !_linkUp || frame.Length < EthernetHeaderSize || frame.Length > MaxFrameSize)
        {
            Interlocked.Increment(ref _rxDropped);
            return;
        }
        lock (_pendingLock)
        {
            if (_pending.Count >= MaxPendingFrames)
            {
                Interlocked.Increment(ref _rxDropped);
                return;
            }
            var copy = ArrayPool<byte>.Shared.Rent(frame.Length);
            frame.CopyTo(copy);
            _pending.Enqueue((copy, frame.Length));
        }
        context.RunExclusive(_deliver);
    }

    /// <summary>Frames waiting for receive buffers.</summary>
    public int PendingFrames
    {
        get { lock (_pendingLock) return _pending.Count; }
    }

    // Receive buffers are held until a frame exists for them, unlike the usual drain that completes everything.
    private void Deliver(VirtioDeviceContext context)
    {
        var q = context.Queues[ReceiveQueue];
        while (true)
        {
            while (PendingFrames > 0 && q.TryPop(out var chain))
                q.AddUsed(chain.Head, Receive(chain));
            // Out of buffers with frames waiting: ask for a notification, unless buffers arrived meanwhile.
            if (PendingFrames == 0 || !q.EnableNotifications()) break;
        }
        context.SignalUsed(q);
    }

    private uint Receive(DescriptorChain chain)
    {
        (byte[] Data, int Length) frame;
        lock (_pendingLock)
        {
            if (!_pending.TryDequeue(out frame)) return 0;
        }
        try
        {
            if (chain.WritableLength < (ulong)(HeaderSize + frame.Length))
            {
                // Without MRG_RXBUF a frame must fit one chain; the driver sees an empty buffer and reuses it.
                Interlocked.Increment(ref _rxDropped);
                return 0;
            }
            Span<byte> header = stackalloc byte[HeaderSize];
            header.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(header[HeaderNumBuffersOffset..], 1);
            chain.WriteTo(0, header);
            chain.WriteTo(HeaderSize, frame.Data.AsSpan(0, frame.Length));
            Interlocked.Increment(ref _rxFrames);
            Interlocked.Add(ref _rxBytes, frame.Length);
            return (uint)(HeaderSize + frame.Length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame.Data);
        }
    }

    public void Dispose() => _backend.Dispose();
}
