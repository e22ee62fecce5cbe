using System.Buffers.Binary;

namespace SharpVmm.Boot.Acpi;

/// <summary>
/// The Multiple APIC Description Table ("APIC"), revision 5: one enabled Local APIC per vCPU (processor UID = APIC ID =
/// index), one IOAPIC, the ISA IRQ 0 → GSI 2 override every PC has (the PIT is wired to IOAPIC pin 2), and LINT1 of
/// every local APIC as NMI. No SCI override: a hardware-reduced platform has no SCI.
/// </summary>
public static class Madt
{
    public const string Signature = "APIC";
    public const byte Revision = 5;
    public const int LocalApicAddressOffset = 36, FlagsOffset = 40, EntriesOffset = 44;
    public const uint PcatCompat = 1;

    public const byte TypeLocalApic = 0, TypeIoApic = 1, TypeInterruptSourceOverride = 2, TypeLocalApicNmi = 4;
    public const int LocalApicLength = 8, IoApicLength = 12, InterruptSourceOverrideLength = 10, LocalApicNmiLength = 6;
    public const uint LocalApicEnabled = 1;

    /// <summary>MPS INTI flags: polarity active high (bits 1:0 = 01), trigger edge (bits 3:2 = 01).</summary>
    public const ushort EdgeActiveHigh = 0x0005;
    /// <summary>Processor UID meaning "all processors" in a Local APIC NMI entry.</summary>
    public const byte AllProcessors = 0xFF;

    /// <summary>APIC IDs are 8 bits and 0xFF is the broadcast ID: at most 255 CPUs without x2APIC entries.</summary>
    public const int MaxCpus = 255;

    public static byte[] Build(AcpiSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.CpuCount is < 1 or > MaxCpus)
            throw new BootException($"{spec.CpuCount} vCPUs cannot be described with xAPIC entries: use 1 to {MaxCpus}");
        int length = EntriesOffset + spec.CpuCount * LocalApicLength + IoApicLength + InterruptSourceOverrideLength + LocalApicNmiLength;
        var t = Sdt.Create(Signature, length, Revision, spec);
        var s = t.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s[LocalApicAddressOffset..], spec.LocalApicAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[FlagsOffset..], spec.LegacyPic ? PcatCompat : 0);

        int o = EntriesOffset;
        for (int cpu = 0; cpu < spec.CpuCount; cpu++)
        {
            s[o] = TypeLocalApic;
            s[o + 1] = LocalApicLength;
            s[o + 2] = (byte)cpu;  // ACPI processor UID
            s[o + 3] = (byte)cpu;  // APIC ID
            BinaryPrimitives.WriteUInt32LittleEndian(s[(o + 4)..], LocalApicEnabled);
            o += LocalApicLength;
        }

        s[o] = TypeIoApic;
        s[o + 1] = IoApicLength;
        s[o + 2] = spec.IoApicId;
        BinaryPrimitives.WriteUInt32LittleEndian(s[(o + 4)..], spec.IoApicAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[(o + 8)..], spec.IoApicGsiBase);
        o += IoApicLength;

        s[o] = TypeInterruptSourceOverride;
        s[o + 1] = InterruptSourceOverrideLength;
        s[o + 2] = 0;  // bus: ISA
        s[o + 3] = 0;  // source: IRQ 0
        BinaryPrimitives.WriteUInt32LittleEndian(s[(o + 4)..], spec.IoApicGsiBase + 2);
        BinaryPrimitives.WriteUInt16LittleEndian(s[(o + 8)..], EdgeActiveHigh);
        o += InterruptSourceOverrideLength;

        s[o] = TypeLocalApicNmi;
        s[o + 1] = LocalApicNmiLength;
        s[o + 2] = AllProcessors;
        BinaryPrimitives.WriteUInt16LittleEndian(s[(o + 3)..], 0); // flags: conforms to the bus
        s[o + 5] = 1; // LINT1
        o += LocalApicNmiLength;

        Sdt.SetChecksum(s);
        return t;
    }
}
