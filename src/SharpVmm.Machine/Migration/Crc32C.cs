using System.Buffers.Binary;
using System.Numerics;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every migration record and of each page
/// in a snapshot's RAM table. <see cref="BitOperations.Crc32C(uint, ulong)"/> is the CPU's CRC32 instruction where
/// there is one (eight bytes per instruction, fast enough to check all of guest RAM on the way) and .NET's table
/// elsewhere; this adds the initial and final inversion the standard CRC-32C has.
/// </summary>
public static class Crc32C
{
    /// <summary>The CRC of <paramref name="data"/>, continuing from <paramref name="crc"/> (start with 0).</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        crc = ~crc;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);
}
