using SharpVmm.Boot.Acpi;

namespace SharpVmm.Boot.Tests.Acpi;

/// <summary>Encodings checked against the ACPI spec's AML grammar, byte for byte.</summary>
public class AmlTests
{
    [Theory]
    [InlineData(0UL, new byte[] { 0x00 })]
    [InlineData(1UL, new byte[] { 0x01 })]
    [InlineData(2UL, new byte[] { 0x0A, 0x02 })]
    [InlineData(0xFFUL, new byte[] { 0x0A, 0xFF })]
    [InlineData(0x100UL, new byte[] { 0x0B, 0x00, 0x01 })]
    [InlineData(0x12345UL, new byte[] { 0x0C, 0x45, 0x23, 0x01, 0x00 })]
    [InlineData(0xFEC0_0000UL, new byte[] { 0x0C, 0x00, 0x00, 0xC0, 0xFE })]
    [InlineData(0x1_0000_0000UL, new byte[] { 0x0E, 0, 0, 0, 0, 1, 0, 0, 0 })]
    public void Integers_use_the_shortest_encoding(ulong value, byte[] expected)
    {
        Assert.Equal(expected, Aml.Integer(value));
    }

    [Theory]
    [InlineData(0, new byte[] { 0x01 })]
    [InlineData(62, new byte[] { 0x3F })]
    [InlineData(63, new byte[] { 0x41, 0x04 })]          // 65 = 0x41: lead 0x40 | 0x1, then 0x04
    [InlineData(0x0FFD, new byte[] { 0x4F, 0xFF })]      // 0xFFF total, the largest two-byte length
    [InlineData(0x0FFE, new byte[] { 0x81, 0x00, 0x01 })] // 0x1001 total
    [InlineData(0xFFFFC, new byte[] { 0x8F, 0xFF, 0xFF })]
    [InlineData(0xFFFFD, new byte[] { 0xC1, 0x00, 0x00, 0x01 })]
    public void PkgLength_counts_itself_and_spills_into_extra_bytes(int content, byte[] expected)
    {
        Assert.Equal(expected, Aml.PkgLength(content));
    }

    [Fact]
    public void EisaId_compresses_PNP0501()
    {
        Assert.Equal(new byte[] { 0x0C, 0x41, 0xD0, 0x05, 0x01 }, Aml.EisaId("PNP0501"));
        Assert.Equal(new byte[] { 0x0C, 0x41, 0xD0, 0x0A, 0x06 }, Aml.EisaId("PNP0A06"));
        Assert.Throws<ArgumentException>(() => Aml.EisaId("pnp0501"));
        Assert.Throws<ArgumentException>(() => Aml.EisaId("PNP05"));
    }

    [Fact]
    public void Name_strings_pad_segments_and_use_prefixes()
    {
        Assert.Equal("_HID"u8.ToArray(), Aml.NameString("_HID"));
        Assert.Equal("_SB_"u8.ToArray(), Aml.NameString("_SB"));
        Assert.Equal([0x5C, .. "_SB_"u8], Aml.NameString("\\_SB"));
        Assert.Equal([0x5C, 0x2E, .. "_SB_COM1"u8], Aml.NameString("\\_SB.COM1"));
        Assert.Equal([0x2F, 0x03, .. "_SB_PCI0ISA_"u8], Aml.NameString("_SB.PCI0.ISA"));
        Assert.Equal([0x5E, 0x5E, .. "FOO_"u8], Aml.NameString("^^FOO"));
        Assert.Equal(new byte[] { 0x5C, 0x00 }, Aml.NameString("\\"));
        Assert.Throws<ArgumentException>(() => Aml.NameString("TOOLONG"));
        Assert.Throws<ArgumentException>(() => Aml.NameString("1ABC"));
        Assert.Throws<ArgumentException>(() => Aml.NameString("a"));
    }

    [Fact]
    public void Strings_are_NUL_terminated_ASCII()
    {
        Assert.Equal([0x0D, .. "LNRO0005"u8, 0x00], Aml.String("LNRO0005"));
        Assert.Throws<ArgumentException>(() => Aml.String("é"));
    }

    [Fact]
    public void A_method_returning_a_constant()
    {
        // Method (_STA, 0, NotSerialized) { Return (0x0F) }
        Assert.Equal(new byte[] { 0x14, 0x09, 0x5F, 0x53, 0x54, 0x41, 0x00, 0xA4, 0x0A, 0x0F },
            Aml.Method("_STA", 0, false, Aml.Return(Aml.Integer(0x0F))));
        // Serialized with 2 arguments: flags 0x0A.
        Assert.Equal(0x0A, Aml.Method("FOO", 2, true)[6]);
    }

    [Fact]
    public void Packages_and_buffers()
    {
        Assert.Equal(new byte[] { 0x12, 0x07, 0x04, 0x0A, 0x05, 0x00, 0x00, 0x00 },
            Aml.Package(Aml.Integer(5), Aml.Integer(0), Aml.Integer(0), Aml.Integer(0)));
        Assert.Equal(new byte[] { 0x11, 0x05, 0x0A, 0x02, 0xAB, 0xCD }, Aml.Buffer([0xAB, 0xCD]));
        var big = Aml.Buffer(new byte[100]);
        // 2 + 100 content bytes need a two-byte PkgLength: total 104 = 0x68 → lead 0x40 | 0x8, then 0x06.
        Assert.Equal(new byte[] { 0x11, 0x48, 0x06, 0x0A, 0x64 }, big[..5]);
        Assert.Equal(105, big.Length);
    }

    [Fact]
    public void Resource_descriptors()
    {
        Assert.Equal(new byte[] { 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x79, 0x00 },
            new ResourceTemplate().Io(0x3F8, 0x3F8, 1, 8).ToBytes());
        Assert.Equal(new byte[] { 0x23, 0x10, 0x00, 0x01, 0x79, 0x00 },
            new ResourceTemplate().Irq(edge: true, activeLow: false, shared: false, 4).ToBytes());
        Assert.Equal(new byte[] { 0x23, 0x00, 0x82, 0x18, 0x79, 0x00 },
            new ResourceTemplate().Irq(edge: false, activeLow: true, shared: true, 9, 15).ToBytes());
        Assert.Equal(new byte[] { 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xD0, 0x00, 0x02, 0x00, 0x00, 0x79, 0x00 },
            new ResourceTemplate().Memory32Fixed(true, 0xD000_0000, 0x200).ToBytes());
        Assert.Equal(new byte[] { 0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00, 0x79, 0x00 },
            new ResourceTemplate().Interrupt(consumer: true, edge: true, activeLow: false, shared: false, 5).ToBytes());
        Assert.Equal(new byte[] { 0x89, 0x0A, 0x00, 0x01, 0x02, 0x10, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x79, 0x00 },
            new ResourceTemplate().Interrupt(consumer: true, edge: false, activeLow: false, shared: false, 16, 17).ToBytes());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResourceTemplate().Irq(true, false, false, 16));
    }

    [Fact]
    public void Field_widths_hold_the_plain_bit_count()
    {
        // Field (EREG, DWordAcc, NoLock, WriteAsZeros) { ESEL, 32, WIDE, 100 }: 100 bits needs a two-byte width.
        var f = Aml.Field("EREG", Aml.DWordAcc | Aml.WriteAsZeros, ("ESEL", 32), ("WIDE", 100));
        Assert.Equal(new byte[] { 0x5B, 0x81, 0x11, (byte)'E', (byte)'R', (byte)'E', (byte)'G', 0x43,
            (byte)'E', (byte)'S', (byte)'E', (byte)'L', 0x20, (byte)'W', (byte)'I', (byte)'D', (byte)'E', 0x44, 0x06 }, f);
        Assert.Throws<ArgumentException>(() => Aml.Field("EREG", 0, ("TOO.LONG", 8)));
    }
}
