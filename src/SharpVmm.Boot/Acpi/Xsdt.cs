using System.Buffers.Binary;

namespace SharpVmm.Boot.Acpi;

/// <summary>Extended System Description Table: 64-bit pointers to every other table except the DSDT (the FADT points at that).</summary>
public static class Xsdt
{
    public const string Signature = "XSDT";
    public const byte Revision = 1;

    public static byte[] Build(AcpiSpec spec, ReadOnlySpan<ulong> tables)
    {
        var t = Sdt.Create(Signature, Sdt.HeaderSize + 8 * tables.Length, Revision, spec);
        for (int i = 0; i < tables.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(Sdt.HeaderSize + 8 * i), tables[i]);
        Sdt.SetChecksum(t);
        return t;
    }
}
