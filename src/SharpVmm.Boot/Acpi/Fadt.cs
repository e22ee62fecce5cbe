using System.Buffers.Binary;

namespace SharpVmm.Boot.Acpi;

/// <summary>
/// The Fixed ACPI Description Table ("FACP"), revision 6 (ACPI 6.3 layout, 276 bytes), for a hardware-reduced
/// platform.
/// <para>
/// Why hardware-reduced: the alternative is a PM1a event/control block, which drags in an SCI interrupt, PM1 status
/// and enable registers, the ACPI enable handshake through SMI_CMD and a PM timer the OS will calibrate against. With
/// HW_REDUCED_ACPI the OS powers off with one byte: it clears WAK_STS in SLEEP_STATUS_REG and writes
/// SLP_TYP | SLP_EN to SLEEP_CONTROL_REG, both 8-bit I/O registers here. No FACS is needed either. The Debian cloud
/// kernel (CONFIG_ACPI=y) supports this path, and QEMU's microvm boots that kernel with the same kind of FADT. A
/// hardware-reduced Linux x86 guest skips the legacy PIC and the PIT tick and ticks on the LAPIC timer.
/// </para>
/// </summary>
public static class Fadt
{
    public const string Signature = "FACP";
    public const int Length = 276;
    public const byte Revision = 6;
    public const byte MinorVersion = 3;

    public const int FirmwareCtrlOffset = 36, DsdtOffset = 40, PreferredPmProfileOffset = 45, SciIntOffset = 46;
    public const int IapcBootArchOffset = 109, FlagsOffset = 112, ResetRegOffset = 116, ResetValueOffset = 128;
    public const int MinorVersionOffset = 131, XFirmwareCtrlOffset = 132, XDsdtOffset = 140;
    public const int SleepControlRegOffset = 244, SleepStatusRegOffset = 256, HypervisorVendorOffset = 268;

    // Flags.
    public const uint Wbinvd = 1u << 0;
    public const uint ProcC1 = 1u << 2;
    /// <summary>Power button, if any, is a control-method device (there is no fixed-feature one).</summary>
    public const uint PwrButton = 1u << 4;
    public const uint SlpButton = 1u << 5;
    public const uint ResetRegSup = 1u << 10;
    public const uint HwReducedAcpi = 1u << 20;
    /// <summary>
    /// FORCE_APIC_PHYSICAL_DESTINATION_MODE, deliberately left clear: Linux already routes in physical mode when it
    /// runs x2APIC without interrupt remapping (as on emu), and the flag would also move xAPIC-mode guests (emu with
    /// hypervisor=off, KVM's guests) from flat logical to physical flat, where nothing requires it.
    /// </summary>
    public const uint ForceApicPhysicalDestinationMode = 1u << 19;

    // IA-PC boot architecture flags.
    public const ushort LegacyDevices = 1 << 0;
    public const ushort Has8042 = 1 << 1;
    public const ushort VgaNotPresent = 1 << 2;
    public const ushort CmosRtcNotPresent = 1 << 5;

    public static byte[] Build(AcpiSpec spec, ulong dsdtAddress)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var t = Sdt.Create(Signature, Length, Revision, spec);
        var s = t.AsSpan();

        if (dsdtAddress <= uint.MaxValue) BinaryPrimitives.WriteUInt32LittleEndian(s[DsdtOffset..], (uint)dsdtAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(s[XDsdtOffset..], dsdtAddress);

        ushort boot = VgaNotPresent;
        if (spec.Com1) boot |= LegacyDevices;
        if (spec.I8042) boot |= Has8042;
        if (!spec.CmosRtc) boot |= CmosRtcNotPresent;
        BinaryPrimitives.WriteUInt16LittleEndian(s[IapcBootArchOffset..], boot);

        BinaryPrimitives.WriteUInt32LittleEndian(s[FlagsOffset..], Wbinvd | ProcC1 | PwrButton | SlpButton | ResetRegSup | HwReducedAcpi);

        Gas.WriteIoByte(s[ResetRegOffset..], (ushort)(spec.SleepPort + AcpiSleepRegisters.ResetOffset));
        s[ResetValueOffset] = AcpiSleepRegisters.ResetValue;
        s[MinorVersionOffset] = MinorVersion;
        Gas.WriteIoByte(s[SleepControlRegOffset..], (ushort)(spec.SleepPort + AcpiSleepRegisters.ControlOffset));
        Gas.WriteIoByte(s[SleepStatusRegOffset..], (ushort)(spec.SleepPort + AcpiSleepRegisters.StatusOffset));
        Sdt.Ascii(s.Slice(HypervisorVendorOffset, 8), "SharpVmm", "hypervisor vendor identity", exact: true);

        Sdt.SetChecksum(s);
        return t;
    }
}
