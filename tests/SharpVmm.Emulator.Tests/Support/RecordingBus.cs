using SharpVmm.Core.Io;

namespace SharpVmm.Emulator.Tests.Support;

/// <summary>A test IO bus: records port writes and MMIO accesses, answers port reads from a table.</summary>
public sealed class RecordingBus : IIoBus
{
    public List<(ushort Port, ulong Value, int Size)> PortWrites { get; } = [];
    public List<(ulong Address, ulong Value, int Size, bool Write)> Mmio { get; } = [];
    public Dictionary<ushort, ulong> PortValues { get; } = [];
    public Func<ulong, ulong>? MmioReadValue { get; set; }

    public void PioRead(ushort port, Span<byte> data)
    {
        ulong v = PortValues.TryGetValue(port, out var x) ? x : ulong.MaxValue;
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(v >> (8 * (i % 8)));
    }

    public void PioWrite(ushort port, ReadOnlySpan<byte> data)
    {
        ulong v = 0;
        for (int i = 0; i < data.Length && i < 8; i++) v |= (ulong)data[i] << (8 * i);
        lock (PortWrites) PortWrites.Add((port, v, data.Length));
    }

    public void MmioRead(ulong address, Span<byte> data)
    {
        ulong v = MmioReadValue?.Invoke(address) ?? ulong.MaxValue;
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(v >> (8 * (i % 8)));
        lock (Mmio) Mmio.Add((address, v, data.Length, false));
    }

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
    {
        ulong v = 0;
        for (int i = 0; i < data.Length && i < 8; i++) v |= (ulong)data[i] << (8 * i);
        lock (Mmio) Mmio.Add((address, v, data.Length, true));
    }
}
