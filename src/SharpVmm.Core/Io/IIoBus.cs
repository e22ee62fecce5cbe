namespace SharpVmm.Core.Io;

/// <summary>
/// Where accelerators send guest port I/O and MMIO. Implementations never throw to the accelerator:
/// an unmapped read returns all ones, an unmapped write is dropped, a failing device stops the VM
/// through the machine, and every one of those is logged.
/// </summary>
public interface IIoBus
{
    void PioRead(ushort port, Span<byte> data);
    void PioWrite(ushort port, ReadOnlySpan<byte> data);
    void MmioRead(ulong address, Span<byte> data);
    void MmioWrite(ulong address, ReadOnlySpan<byte> data);
}
