using SharpVmm.Core.Io;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// The differential guest has no devices: sequences never do I/O and every memory operand is RAM.
/// Any access that reaches the bus is recorded (and fails the case) instead of being served.
/// </summary>
internal sealed class RecordingIoBus : IIoBus
{
    private readonly List<string> _accesses = [];

    public IReadOnlyList<string> Accesses => _accesses;
    public void Clear() => _accesses.Clear();

    public void PioRead(ushort port, Span<byte> data) { _accesses.Add($"in port 0x{port:x} size {data.Length}"); data.Fill(0xFF); }
    public void PioWrite(ushort port, ReadOnlySpan<byte> data) => _accesses.Add($"out port 0x{port:x} size {data.Length}");
    public void MmioRead(ulong address, Span<byte> data) { _accesses.Add($"mmio read 0x{address:x} size {data.Length}"); data.Fill(0xFF); }
    public void MmioWrite(ulong address, ReadOnlySpan<byte> data) => _accesses.Add($"mmio write 0x{address:x} size {data.Length}");
}
