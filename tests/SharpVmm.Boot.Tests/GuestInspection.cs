using System.Buffers.Binary;
using SharpVmm.Memory;

namespace SharpVmm.Boot.Tests;

/// <summary>Reading what a loader left in guest memory: little-endian fields and a software page walk.</summary>
internal static class GuestInspection
{
    public const ulong MiB = 1 << 20;

    public static ulong U64(GuestMemory m, ulong gpa) => m.Read<ulong>(gpa);
    public static uint U32(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b[o..]);
    public static ushort U16(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b[o..]);
    public static ulong U64(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b[o..]);

    /// <summary>A software walk of 4-level paging (4 KiB, 2 MiB and 1 GiB leaves), null when not present.</summary>
    public static ulong? Translate(GuestMemory m, ulong cr3, ulong va)
    {
        const ulong addrMask = 0x000F_FFFF_FFFF_F000;
        ulong table = cr3 & addrMask;
        for (int level = 3; level >= 0; level--)
        {
            int index = (int)((va >> (12 + 9 * level)) & 0x1FF);
            ulong e = m.Read<ulong>(table + (ulong)index * 8);
            if ((e & 1) == 0) return null;
            if (level is 1 or 2 && (e & 0x80) != 0)
            {
                ulong pageMask = (1UL << (12 + 9 * level)) - 1;
                return (e & addrMask & ~pageMask) | (va & pageMask);
            }
            table = e & addrMask;
        }
        return table | (va & 0xFFF);
    }
}
