using SharpVmm.Core.Interrupts;

namespace SharpVmm.Emulator.Tests.Support;

/// <summary>A minimal local APIC for tests: a queue of pending vectors, NMI/INIT/SIPI flags, register writes recorded.</summary>
public sealed class FakeLocalApic(int id) : ILocalApic
{
    private readonly Queue<int> _pending = new();
    private volatile bool _nmi, _init;
    private int _sipi = -1;

    public int ApicId { get; } = id;
    public Action? Wake { get; set; }
    public List<(uint Offset, uint Value)> Writes { get; } = [];
    public int Acknowledged { get; private set; }

    public bool HasInterrupt { get { lock (_pending) return _pending.Count > 0; } }

    public int Acknowledge()
    {
        lock (_pending)
        {
            if (_pending.Count == 0) return -1;
            Acknowledged++;
            return _pending.Dequeue();
        }
    }

    public void Raise(int vector)
    {
        lock (_pending) _pending.Enqueue(vector);
        Wake?.Invoke();
    }

    public void RaiseNmi() { _nmi = true; Wake?.Invoke(); }
    public void SendInit() { _init = true; Wake?.Invoke(); }
    public void SendStartup(byte vector) { Volatile.Write(ref _sipi, vector); Wake?.Invoke(); }

    public void Read(uint offset, Span<byte> data)
    {
        uint v = offset == 0x20 ? (uint)ApicId << 24 : 0;
        for (int i = 0; i < data.Length && i < 4; i++) data[i] = (byte)(v >> (8 * i));
    }

    public void Write(uint offset, ReadOnlySpan<byte> data)
    {
        uint v = 0;
        for (int i = 0; i < data.Length && i < 4; i++) v |= (uint)data[i] << (8 * i);
        lock (Writes) Writes.Add((offset, v));
    }

    public bool TryTakeNmi() { bool n = _nmi; _nmi = false; return n; }
    public bool TryTakeInit() { bool n = _init; _init = false; return n; }

    public bool TryTakeStartup(out byte vector)
    {
        int v = Interlocked.Exchange(ref _sipi, -1);
        vector = (byte)v;
        return v >= 0;
    }

    public ApicMsrResult ReadMsr(uint msr, out ulong value) { value = 0; return ApicMsrResult.NotApic; }
    public ApicMsrResult WriteMsr(uint msr, ulong value) => ApicMsrResult.NotApic;
}
