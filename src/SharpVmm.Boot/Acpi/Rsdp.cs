using System.Buffers.Binary;

namespace SharpVmm.Boot.Acpi;

/// <summary>
/// Root System Description Pointer, revision 2 (36 bytes): points at the XSDT. The first checksum covers the 20-byte
/// ACPI 1.0 part, the extended checksum all 36 bytes. No RSDT: every ACPI 2.0+ OS, Linux included, follows the XSDT.
/// </summary>
public static class Rsdp
{
    public const string Signature = "RSD PTR ";
    public const int Length = 36;
    public const byte Revision = 2;
    public const int ChecksumOffset = 8, OemIdOffset = 9, RevisionOffset = 15, RsdtAddressOffset = 16;
    public const int LengthOffset = 20, XsdtAddressOffset = 24, ExtendedChecksumOffset = 32;
    public const int V1Length = 20;

    public static byte[] Build(AcpiSpec spec, ulong xsdtAddress)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var t = new byte[Length];
        var s = t.AsSpan();
        Sdt.Ascii(s[..8], Signature, "RSDP signature", exact: true);
        Sdt.Ascii(s.Slice(OemIdOffset, 6), spec.OemId, "OEM ID", exact: false);
        s[RevisionOffset] = Revision;
        BinaryPrimitives.WriteUInt32LittleEndian(s[LengthOffset..], Length);
        BinaryPrimitives.WriteUInt64LittleEndian(s[XsdtAddressOffset..], xsdtAddress);
        Sdt.SetChecksum(s, ChecksumOffset, V1Length);
        Sdt.SetChecksum(s, ExtendedChecksumOffset, Length);
        return t;
    }
}
