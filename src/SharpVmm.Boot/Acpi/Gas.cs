using System.Buffers.Binary;

namespace SharpVmm.Boot.Acpi;

/// <summary>Generic Address Structure (12 bytes): where a fixed-hardware register lives.</summary>
public static class Gas
{
    public const int Size = 12;
    public const byte SystemMemory = 0, SystemIo = 1;
    /// <summary>Access size code for byte accesses.</summary>
    public const byte ByteAccess = 1;

    /// <summary>An 8-bit register in port space, accessed a byte at a time.</summary>
    public static void WriteIoByte(Span<byte> destination, ushort port)
    {
        destination[0] = SystemIo;
        destination[1] = 8;   // register bit width
        destination[2] = 0;   // register bit offset
        destination[3] = ByteAccess;
        BinaryPrimitives.WriteUInt64LittleEndian(destination[4..], port);
    }
}
