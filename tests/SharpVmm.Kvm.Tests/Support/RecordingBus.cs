using SharpVmm.Core.Io;

namespace SharpVmm.Kvm.Tests.Support;

/// <summary>An IIoBus that records every access and answers reads from per-port/per-address queues (default 0xFF..).</summary>
public sealed class RecordingBus : IIoBus
{
    public readonly record struct Access(bool Mmio, bool Write, ulong Address, byte[] Data)
    {
        public ulong Value
        {
            get
            {
                ulong v = 0;
                for (int i = Data.Length - 1; i >= 0; i--) v = (v << 8) | Data[i];
                return v;
            }
        }
    }

    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Queue<byte>> _pioReads = [];
    private readonly Dictionary<ulong, ulong> _mmioReads = [];

    public List<Access> Accesses { get; } = [];

    /// <summary>Called after each port write with the port and value, on the vCPU thread.</summary>
    public Action<ushort, ulong>? OnPioWrite { get; set; }

    public void QueuePioRead(ushort port, params byte[] bytes)
    {
        lock (_lock)
        {
            if (!_pioReads.TryGetValue(port, out var q)) _pioReads[port] = q = new Queue<byte>();
            foreach (var b in bytes) q.Enqueue(b);
        }
    }

    public void SetMmioRead(ulong address, ulong value)
    {
        lock (_lock) _mmioReads[address] = value;
    }

    public List<Access> Snapshot()
    {
        lock (_lock) return [.. Accesses];
    }

    public void PioRead(ushort port, Span<byte> data)
    {
        lock (_lock)
        {
            _pioReads.TryGetValue(port, out var q);
            for (int i = 0; i < data.Length; i++) data[i] = q is { Count: > 0 } ? q.Dequeue() : (byte)0xFF;
            Accesses.Add(new Access(false, false, port, data.ToArray()));
        }
    }

    public void PioWrite(ushort port, ReadOnlySpan<byte> data)
    {
        var a = new Access(false, true, port, data.ToArray());
        lock (_lock) Accesses.Add(a);
        OnPioWrite?.Invoke(port, a.Value);
    }

    public void MmioRead(ulong address, Span<byte> data)
    {
        lock (_lock)
        {
            ulong v = _mmioReads.TryGetValue(address, out var x) ? x : ulong.MaxValue;
            for (int i = 0; i < data.Length; i++) data[i] = (byte)(v >> (8 * i));
            Accesses.Add(new Access(true, false, address, data.ToArray()));
        }
    }

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
    {
        lock (_lock) Accesses.Add(new Access(true, true, address, data.ToArray()));
    }
}
