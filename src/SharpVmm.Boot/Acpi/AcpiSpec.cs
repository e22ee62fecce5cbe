using SharpVmm.Core.Platform;

namespace SharpVmm.Boot.Acpi;

/// <summary>
/// What the ACPI tables describe. The sleep/reset registers are a 3-port window at <see cref="SleepPort"/> with the
/// layout SharpVmm.Devices.Acpi.AcpiSleepDevice decodes (register that device at the same port):
/// <list type="table">
/// <item><term>SleepPort + 0</term><description>SLEEP_CONTROL_REG: SLP_TYP in bits 4:2, SLP_EN bit 5</description></item>
/// <item><term>SleepPort + 1</term><description>SLEEP_STATUS_REG: WAK_STS bit 7</description></item>
/// <item><term>SleepPort + 2</term><description>RESET_REG: writing <see cref="AcpiSleepRegisters.ResetValue"/> resets</description></item>
/// </list>
/// </summary>
public sealed record AcpiSpec
{
    /// <summary>vCPUs, each described by a Local APIC entry with APIC ID and processor UID = its index.</summary>
    public int CpuCount { get; init; } = 1;

    public uint LocalApicAddress { get; init; } = (uint)PcLayout.LocalApicBase;

    /// <summary>KVM's in-kernel IOAPIC resets its ID register to 0; keep the two in agreement.</summary>
    public byte IoApicId { get; init; }
    public uint IoApicAddress { get; init; } = (uint)PcLayout.IoApicBase;
    public uint IoApicGsiBase { get; init; }
    /// <summary>Redirection entries of the IOAPIC (24 for the 82093AA and KVM's model).</summary>
    public int IoApicPins { get; init; } = PcLayout.IoApicPins;

    /// <summary>The machine has a pair of 8259 PICs (MADT PCAT_COMPAT flag).</summary>
    public bool LegacyPic { get; init; } = true;
    /// <summary>A CMOS RTC at ports 0x70/0x71 on IRQ 8, described in the DSDT; when false the FADT says "CMOS RTC not present".</summary>
    public bool CmosRtc { get; init; } = true;
    /// <summary>An 8042 keyboard controller the OS may probe; when false the FADT says it is absent.</summary>
    public bool I8042 { get; init; }
    /// <summary>Describe COM1 (PNP0501, ports 0x3F8-0x3FF, IRQ 4) in the DSDT.</summary>
    public bool Com1 { get; init; } = true;

    /// <summary>virtio-mmio transports, described as LNRO0005 devices with _UID = their index in this list.</summary>
    public IReadOnlyList<VirtioMmioDeviceSpec> VirtioMmioDevices { get; init; } = [];

    /// <summary>First port of the sleep/reset register window (see the type's summary).</summary>
    public ushort SleepPort { get; init; } = AcpiSleepRegisters.DefaultPort;

    /// <summary>
    /// The power button: a Generic Event Device (ACPI0013) whose event register is <see cref="AcpiGedSpec.Port"/>
    /// and whose interrupt is <see cref="AcpiGedSpec.Gsi"/>, notifying a control-method power button (PNP0C0C).
    /// Null: the machine has no power button.
    /// </summary>
    public AcpiGedSpec? Ged { get; init; }

    /// <summary>The I/O port of a pvpanic device (QEMU0001) the guest reports a kernel panic to; null when there is none.</summary>
    public ushort? PvPanicPort { get; init; }

    /// <summary>OEMID in every table header: 6 ASCII characters at most.</summary>
    public string OemId { get; init; } = "SHRPVM";
    /// <summary>OEM table ID in every table header: 8 ASCII characters at most.</summary>
    public string OemTableId { get; init; } = "SHARPVMM";
}

/// <summary>One virtio-mmio transport: its register window and its interrupt.</summary>
/// <param name="Base">Guest-physical base of the register window (below 4 GiB: the descriptor is Memory32Fixed).</param>
/// <param name="Gsi">The IOAPIC input it raises.</param>
/// <param name="LevelTriggered">
/// Level when the device model holds the line until the driver acknowledges InterruptStatus; edge (the default, what
/// irqfd-style pulses give) otherwise. Active high and exclusive either way.
/// </param>
/// <param name="Size">Window size; 0x200 is the virtio-mmio register block.</param>
public sealed record VirtioMmioDeviceSpec(ulong Base, uint Gsi, bool LevelTriggered = false, uint Size = 0x200);

/// <summary>Where the Generic Event Device's event selector register is and which GSI it raises (level, active high).</summary>
public sealed record AcpiGedSpec(ushort Port = AcpiGedRegisters.DefaultPort, uint Gsi = AcpiGedRegisters.DefaultGsi);

/// <summary>
/// The Generic Event Device's register, shared by the DSDT and SharpVmm.Devices.Acpi.AcpiGed: one 32-bit event
/// selector; reading it returns the pending events and clears them. The event bits are QEMU's (hw/acpi/generic_event_device.h).
/// </summary>
public static class AcpiGedRegisters
{
    public const ushort DefaultPort = PcLayout.AcpiGedPort;
    public const int WindowSize = 4;
    public const uint DefaultGsi = PcLayout.AcpiGedGsi;
    public const uint PowerButtonEvent = 1u << 1;
}

/// <summary>QEMU's ISA pvpanic port (-device pvpanic, ioport=0x505).</summary>
public static class PvPanicRegisters
{
    public const ushort DefaultPort = PcLayout.PvPanicPort;
    /// <summary>Bit 0 written by the guest: it panicked. Bit 1: a crash kernel was loaded (kdump will follow).</summary>
    public const byte Panicked = 1, CrashLoaded = 2;
}

/// <summary>The register window shared by the ACPI tables and the device that implements it.</summary>
public static class AcpiSleepRegisters
{
    public const ushort DefaultPort = PcLayout.AcpiSleepPort;
    public const int ControlOffset = 0, StatusOffset = 1, ResetOffset = 2;
    public const int WindowSize = 3;
    /// <summary>The value written to RESET_REG to reset the machine (FADT RESET_VALUE).</summary>
    public const byte ResetValue = 0x01;
    /// <summary>SLP_TYP for S5 (soft off), as the DSDT's \_S5 package gives it.</summary>
    public const byte S5SleepType = 5;
    public const byte SleepTypeShift = 2, SleepTypeMask = 0x1C, SleepEnable = 0x20, WakeStatus = 0x80;
}
