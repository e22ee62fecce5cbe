using SharpVmm.Core.Io;

namespace SharpVmm.Testing;

/// <summary>
/// An I/O bus for test guests: records every access, answers port reads from per-port queues, then from fixed
/// per-port values, then with all ones (an empty ISA bus), and MMIO reads from per-address values or a callback.
/// Thread-safe: several vCPUs may use it at once.
/// </summary>
public sealed class RecordingBus : IIoBus
{
    public readonly record struct Access(bool Mmio, bool Write, ulong Address, byte[] Data)
    {
        public ulong Value
        {
            get
            {
                ulong v = 0;
                for (int i = Math.Min(Data.Length, 8) - 1; i >= 0; i--) v = (v << 8) | Data[i];
                return v;
            }
        }
    }

    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Queue<byte>> _pioReads = [];
    private readonly Dictionary<ulong, ulong> _mmioReads = [];

    /// <summary>Every access in order.</summary>
    public List<Access> Accesses { get; } = [];

    /// <summary>Port writes as (port, value, size), in order.</summary>
    public List<(ushort Port, ulong Value, int Size)> PortWrites { get; } = [];

    /// <summary>MMIO accesses as (address, value, size, write), in order.</summary>
    public List<(ulong Address, ulong Value, int Size, bool Write)> Mmio { get; } = [];

    /// <summary>Fixed answers for port reads once a port's queue is empty.</summary>
    public Dictionary<ushort, ulong> PortValues { get; } = [];

    /// <summary>Answers MMIO reads not set with <see cref="SetMmioRead"/>.</summary>
    public Func<ulong, ulong>? MmioReadValue { get; set; }

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

    /// <summary>A copy of <see cref="Accesses"/> taken under the lock, safe while vCPUs run.</summary>
    public List<Access> Snapshot()
    {
        lock (_lock) return [.. Accesses];
    }

    public void PioRead(ushort port, Span<byte> data)
    {
        lock (_lock)
        {
            _pioReads.TryGetValue(port, out var q);
            bool fixedValue = PortValues.TryGetValue(port, out ulong v);
            for (int i = 0; i < data.Length; i++)
                data[i] = q is { Count: > 0 } ? q.Dequeue() : fixedValue ? (byte)(v >> (8 * (i % 8))) : (byte)0xFF;
            Accesses.Add(new Access(false, false, port, data.ToArray()));
        }
    }

    public void PioWrite(ushort port, ReadOnlySpan<byte> data)
    {
        var a = new Access(false, true, port, data.ToArray());
        lock (_lock)
        {
            Accesses.Add(a);
            PortWrites.Add((port, a.Value, data.Length));
        }
        OnPioWrite?.Invoke(port, a.Value);
    }

    public void MmioRead(ulong address, Span<byte> data)
    {
        ulong v;
        lock (_lock)
        {
            if (!_mmioReads.TryGetValue(address, out v)) v = MmioReadValue?.Invoke(address) ?? ulong.MaxValue;
        }
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(v >> (8 * (i % 8)));
        lock (_lock)
        {
            Accesses.Add(new Access(true, false, address, data.ToArray()));
            Mmio.Add((address, v, data.Length, false));
        }
    }

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
    {
        var a = new Access(true, true, address, data.ToArray());
        lock (_lock)
        {
            Accesses.Add(a);
            Mmio.Add((address, a.Value, data.Length, true));
        }
    }
}
