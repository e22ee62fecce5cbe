using System.Buffers.Binary;
using System.Text;

namespace SharpVmm.Boot.Acpi;

/// <summary>The 36-byte System Description Table header and the checksum rule every ACPI table follows.</summary>
public static class Sdt
{
    public const int HeaderSize = 36;
    public const int LengthOffset = 4, RevisionOffset = 8, ChecksumOffset = 9;
    /// <summary>Creator ID: the tool that built the tables.</summary>
    public const string CreatorId = "SVMM";
    public const uint CreatorRevision = 1;
    public const uint OemRevision = 1;

    /// <summary>
    /// A table of <paramref name="length"/> bytes with its header filled in; the caller writes the body after
    /// <see cref="HeaderSize"/> and calls <see cref="SetChecksum"/> last.
    /// </summary>
    public static byte[] Create(string signature, int length, byte revision, AcpiSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var t = new byte[length];
        Ascii(t.AsSpan(0, 4), signature, "signature", exact: true);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(LengthOffset), (uint)length);
        t[RevisionOffset] = revision;
        Ascii(t.AsSpan(10, 6), spec.OemId, "OEM ID", exact: false);
        Ascii(t.AsSpan(16, 8), spec.OemTableId, "OEM table ID", exact: false);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(24), OemRevision);
        Ascii(t.AsSpan(28, 4), CreatorId, "creator ID", exact: true);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(32), CreatorRevision);
        return t;
    }

    /// <summary>Sets the byte at <paramref name="checksumOffset"/> so that bytes [0, length) sum to 0 modulo 256.</summary>
    public static void SetChecksum(Span<byte> table, int checksumOffset = ChecksumOffset, int length = -1)
    {
        if (length < 0) length = table.Length;
        table[checksumOffset] = 0;
        table[checksumOffset] = (byte)(0x100 - Sum(table[..length]));
    }

    public static byte Sum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte b in bytes) sum += b;
        return sum;
    }

    /// <summary>ASCII text in a fixed field, space-padded (OEM fields are padded with spaces by convention).</summary>
    public static void Ascii(Span<byte> field, string text, string what, bool exact)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > field.Length || (exact && text.Length != field.Length))
            throw new BootException($"ACPI {what} \"{text}\" must be {(exact ? "exactly" : "at most")} {field.Length} characters");
        foreach (char c in text)
            if (c is < ' ' or > '~') throw new BootException($"ACPI {what} \"{text}\" must be printable ASCII");
        field.Fill((byte)' ');
        Encoding.ASCII.GetBytes(text, field);
    }
}
