namespace SharpVmm.Core.Io;

/// <summary>
/// A device's register window on the port or MMIO bus. Offsets are relative to where the device was
/// registered; <paramref name="data"/> is 1, 2, 4 or 8 bytes (little-endian), larger for string I/O chunks.
/// </summary>
public interface IIoDevice
{
    void Read(ulong offset, Span<byte> data);
    void Write(ulong offset, ReadOnlySpan<byte> data);
}
