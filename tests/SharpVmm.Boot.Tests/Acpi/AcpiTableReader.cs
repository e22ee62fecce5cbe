using System.Buffers.Binary;
using System.Text;
using SharpVmm.Memory;

namespace SharpVmm.Boot.Tests.Acpi;

/// <summary>Reads ACPI tables back out of guest RAM the way an OS does, checking lengths and checksums on the way.</summary>
internal static class AcpiTableReader
{
    public static byte[] Table(GuestMemory m, ulong address)
    {
        var header = new byte[36];
        m.Read(address, header);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
        Assert.InRange(length, 36, 1 << 20);
        var t = new byte[length];
        m.Read(address, t);
        Assert.Equal(0, Sum(t));
        return t;
    }

    public static string Signature(byte[] table) => Encoding.ASCII.GetString(table, 0, 4);

    public static int Sum(ReadOnlySpan<byte> b)
    {
        int s = 0;
        foreach (byte x in b) s += x;
        return s & 0xFF;
    }

    /// <summary>The signature → table map reached from the RSDP through the XSDT (and the FADT for the DSDT).</summary>
    public static Dictionary<string, (ulong Address, byte[] Bytes)> Walk(GuestMemory m, ulong rsdp)
    {
        var r = new byte[36];
        m.Read(rsdp, r);
        Assert.Equal("RSD PTR ", Encoding.ASCII.GetString(r, 0, 8));
        Assert.Equal(0, Sum(r.AsSpan(0, 20)));
        Assert.Equal(0, Sum(r));
        ulong xsdtAddress = BinaryPrimitives.ReadUInt64LittleEndian(r.AsSpan(24));
        var xsdt = Table(m, xsdtAddress);
        Assert.Equal("XSDT", Signature(xsdt));
        var tables = new Dictionary<string, (ulong, byte[])> { ["XSDT"] = (xsdtAddress, xsdt) };
        for (int o = 36; o < xsdt.Length; o += 8)
        {
            ulong a = BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(o));
            var t = Table(m, a);
            tables.Add(Signature(t), (a, t));
        }
        var fadt = tables["FACP"].Item2;
        ulong dsdt = BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(140));
        tables.Add("DSDT", (dsdt, Table(m, dsdt)));
        return tables;
    }
}
