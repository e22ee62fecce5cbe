using System.Buffers.Binary;

namespace SharpVmm.Boot.Acpi;

/// <summary>
/// ResourceTemplate() { ... }: resource descriptors (ACPI spec, "Resource Data Types for ACPI") collected into a
/// Buffer and closed with an End Tag. The End Tag's checksum byte is 0, which the spec defines as "treat as valid"
/// and is what iasl emits.
/// </summary>
public sealed class ResourceTemplate
{
    private readonly List<byte> _bytes = [];

    /// <summary>IO(Decode16, min, max, alignment, length): small descriptor 0x47.</summary>
    public ResourceTemplate Io(ushort minimum, ushort maximum, byte alignment, byte length, bool decode16 = true)
    {
        Span<byte> d = [0x47, (byte)(decode16 ? 1 : 0), 0, 0, 0, 0, alignment, length];
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], minimum);
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], maximum);
        _bytes.AddRange(d);
        return this;
    }

    /// <summary>IRQ(Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) { irqs }: small descriptor 0x23 with its flags byte.</summary>
    public ResourceTemplate Irq(bool edge, bool activeLow, bool shared, params int[] irqs)
    {
        ArgumentNullException.ThrowIfNull(irqs);
        ushort mask = 0;
        foreach (int irq in irqs)
        {
            if (irq is < 0 or > 15) throw new ArgumentOutOfRangeException(nameof(irqs), irq, "an IRQ descriptor names ISA IRQs 0-15");
            mask |= (ushort)(1 << irq);
        }
        byte flags = (byte)((edge ? 0x01 : 0) | (activeLow ? 0x08 : 0) | (shared ? 0x10 : 0));
        _bytes.AddRange([0x23, (byte)mask, (byte)(mask >> 8), flags]);
        return this;
    }

    /// <summary>Memory32Fixed(ReadWrite|ReadOnly, base, length): large descriptor 0x86.</summary>
    public ResourceTemplate Memory32Fixed(bool writable, uint baseAddress, uint length)
    {
        Span<byte> d = stackalloc byte[12];
        d[0] = 0x86;
        BinaryPrimitives.WriteUInt16LittleEndian(d[1..], 9);
        d[3] = (byte)(writable ? 1 : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], baseAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
        _bytes.AddRange(d);
        return this;
    }

    /// <summary>
    /// Interrupt(ResourceConsumer|ResourceProducer, Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) { gsis }:
    /// the Extended Interrupt large descriptor 0x89, which can name any GSI (not only ISA IRQs 0-15).
    /// </summary>
    public ResourceTemplate Interrupt(bool consumer, bool edge, bool activeLow, bool shared, params uint[] gsis)
    {
        ArgumentNullException.ThrowIfNull(gsis);
        if (gsis.Length is 0 or > 255) throw new ArgumentException("an Interrupt descriptor lists 1 to 255 interrupts", nameof(gsis));
        int length = 2 + 4 * gsis.Length;
        _bytes.AddRange([0x89, (byte)length, (byte)(length >> 8)]);
        _bytes.Add((byte)((consumer ? 0x01 : 0) | (edge ? 0x02 : 0) | (activeLow ? 0x04 : 0) | (shared ? 0x08 : 0)));
        _bytes.Add((byte)gsis.Length);
        Span<byte> n = stackalloc byte[4];
        foreach (uint gsi in gsis)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(n, gsi);
            _bytes.AddRange(n);
        }
        return this;
    }

    /// <summary>The descriptors followed by the End Tag (0x79, checksum 0).</summary>
    public byte[] ToBytes() => [.. _bytes, 0x79, 0x00];

    /// <summary>The template as the AML Buffer a _CRS is named with.</summary>
    public byte[] ToAml() => Aml.Buffer(ToBytes());
}
