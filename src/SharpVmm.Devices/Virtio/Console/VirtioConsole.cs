using System.Buffers.Binary;
using SharpVmm.Devices.Serial;

namespace SharpVmm.Devices.Virtio.Console;

/// <summary>
/// virtio-console (device ID 3) with one port (no MULTIPORT) on an <see cref="ICharBackend"/>: queue 0 receives,
/// queue 1 transmits. Output is written to the backend on the notifying vCPU's thread. Input arrives on the
/// backend's thread, waits in a bounded buffer and is copied into the driver's receive buffers under the transport's
/// lock, both when it arrives and when the driver adds receive buffers.
/// </summary>
public sealed partial class VirtioConsole : IVirtioDevice, IDisposable
{
    public const int FeatureSize = 0, FeatureEmergencyWrite = 2;
    public const ushort QueueSize = 128;
    /// <summary>Input held while the guest has no receive buffer; beyond it input is dropped (as a UART overruns).</summary>
    public const int MaxPendingInput = 64 * 1024;
    private const int ReceiveQueue = 0, TransmitQueue = 1;

    private readonly ICharBackend _backend;
    private readonly byte[] _txBuffer = new byte[4096];
    private readonly Queue<byte> _pending = new();
    private readonly object _pendingLock = new();
    private readonly ChainHandler _transmit;
    private readonly Action<VirtioDeviceContext> _deliver;
    private VirtioDeviceContext? _context;
    private bool _started;
    private long _dropped;

    public VirtioConsole(ICharBackend backend, ushort columns = 80, ushort rows = 25)
    {
        _backend = backend;
        Columns = columns;
        Rows = rows;
        _transmit = Transmit;
        _deliver = Deliver;
    }

    public ushort Columns { get; }
    public ushort Rows { get; }
    /// <summary>Input bytes dropped because the guest did not take them in time.</summary>
    public long DroppedInputBytes => Interlocked.Read(ref _dropped);

    public uint DeviceId => 3;
    public ulong Features => VirtioFeatures.Common | 1UL << FeatureSize | 1UL << FeatureEmergencyWrite;
    public int QueueCount => 2;
    public ushort MaxQueueSize(int queue) => QueueSize;
    public int ConfigSize => 12;

    public void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> c = stackalloc byte[12];
        c.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(c, Columns);
        BinaryPrimitives.WriteUInt16LittleEndian(c[2..], Rows);
        BinaryPrimitives.WriteUInt32LittleEndian(c[4..], 1); // max_nr_ports
        c.Slice(offset, data.Length).CopyTo(data);
    }

    public void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        // emerg_wr: the low byte of a write at offset 8 is a character to print, usable before the queues are up.
        if (offset == 8 && !data.IsEmpty) _backend.Write(data[..1]);
    }

    public void Activate(VirtioDeviceContext context)
    {
        _context = context;
        if (!_started)
        {
            _started = true;
            _backend.Start(OnInput);
        }
    }

    public void Reset()
    {
        _context = null;
        lock (_pendingLock) _pending.Clear();
    }

    public void QueueNotify(int queue)
    {
        if (_context is not { } c) return;
        if (queue == TransmitQueue) c.Drain(c.Queues[TransmitQueue], _transmit);
        else if (queue == ReceiveQueue) _deliver(c);
    }

    private void OnInput(ReadOnlySpan<byte> data)
    {
        lock (_pendingLock)
        {
            foreach (byte b in data)
            {
                if (_pending.Count >= MaxPendingInput) { Interlocked.Increment(ref _dropped); continue; }
                _pending.Enqueue(b);
            }
        }
        _context?.RunExclusive(_deliver);
    }

    // Receive buffers are held until input exists for them, unlike the usual drain that completes everything.
    private void Deliver(VirtioDeviceContext context)
    {
        var q = context.Queues[ReceiveQueue];
        while (PendingCount > 0 && q.TryPop(out var chain))
            q.AddUsed(chain.Head, Receive(chain));
        q.EnableNotifications(); // the driver notifies when it adds receive buffers
        context.SignalUsed(q);
    }

    private int PendingCount
    {
        get { lock (_pendingLock) return _pending.Count; }
    }

    private uint Transmit(DescriptorChain chain)
    {
        var memory = _context!.Memory;
        foreach (var d in chain.Readable)
        {
            for (uint done = 0; done < d.Length;)
            {
                int n = (int)Math.Min(d.Length - done, (uint)_txBuffer.Length);
                memory.Read(d.Address + done, _txBuffer.AsSpan(0, n));
                _backend.Write(_txBuffer.AsSpan(0, n));
                done += (uint)n;
            }
        }
        return 0;
    }

    private uint Receive(DescriptorChain chain)
    {
        var memory = _context!.Memory;
        uint total = 0;
        lock (_pendingLock)
        {
            foreach (var d in chain.Writable)
            {
                int n = (int)Math.Min(d.Length, (uint)_pending.Count);
                if (n == 0) break;
                var span = memory.GetWritableSpan(d.Address, n);
                for (int i = 0; i < n; i++) span[i] = _pending.Dequeue();
                total += (uint)n;
            }
        }
        return total;
    }

    public void Dispose() => _backend.Dispose();
}
