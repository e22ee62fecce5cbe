using System.Buffers.Binary;
using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Pci;

/// <summary>
/// PCI configuration mechanism #1 (ports 0xCF8-0xCFF) on a machine without PCI devices: the 32-bit address register
/// at 0xCF8 keeps what was written (guests detect the mechanism by reading it back), and every configuration read
/// through 0xCFC-0xCFF returns all ones, which is how a PCI bus says "no device here". Configuration writes have no
/// device to reach and vanish.
/// </summary>
public sealed class EmptyPciBus : IIoDevice
{
    public const ushort AddressPort = PcLayout.PciConfigPort;
    public const ushort WindowSize = 8;

    private uint _address;

    public uint Address => Volatile.Read(ref _address);

    public void Read(ulong offset, Span<byte> data)
    {
        if (offset == 0 && data.Length == 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(data, Address);
            return;
        }
        data.Fill(0xFF);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // Only a 32-bit access to 0xCF8 is the address register; byte accesses there belong to other chipset
        // registers (0xCF9 is the reset control register on Intel chipsets), which this machine does not have.
        if (offset == 0 && data.Length == 4) Volatile.Write(ref _address, BinaryPrimitives.ReadUInt32LittleEndian(data));
    }
}
