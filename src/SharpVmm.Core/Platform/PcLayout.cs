using SharpVmm.Memory;

namespace SharpVmm.Core.Platform;

/// <summary>
/// Where everything of SharpVmm's PC lives: guest-physical windows, I/O ports and interrupt lines (GSIs). The board
/// (SharpVmm.Machine.Board.PcBoard) registers the devices here and describes them to the guest in ACPI from these same
/// values, and each device's own constants name these, so the machine and its tables cannot disagree.
/// <code>
///   guest-physical                          ports                          GSIs
///   0          RAM (to 3 GiB, rest at 4 GiB)  0x20/0xA0  PIC pair  0x4D0 ELCR  0   PIT
///   0xE0000    ACPI tables (BIOS area)        0x40  PIT    0x61 port B          4   COM1
///   0xC0000000 32-bit MMIO hole               0x60/0x64 i8042                   8   RTC
///   0xD0000000 virtio-mmio, 4 KiB a slot, 8   0x70  CMOS RTC  0xF4 debug-exit   16+ virtio-mmio slot i
///   0xFEC00000 IOAPIC                         0x3F8 COM1  0x510 fw_cfg
///   0xFEE00000 local APICs                    0x600 ACPI sleep  0x604 ACPI GED   9   ACPI GED (power button)
///                                            0xCF8 PCI config
/// </code>
/// How the loaders use low RAM (page tables, zero page, stack) is theirs: SharpVmm.Boot.LowMemoryLayout.
/// </summary>
public static class PcLayout
{
    // ---- guest-physical ------------------------------------------------------------------------------------

    /// <summary>RAM stops here below 4 GiB; the rest is relocated to <see cref="MemoryLayout.FourGiB"/> (see <see cref="MemoryLayout"/>).</summary>
    public const ulong MmioHoleStart = MemoryLayout.MmioHoleStart;

    /// <summary>The BIOS area [0xE0000, 1 MiB): reserved in the e820 map; the ACPI tables go here.</summary>
    public const ulong AcpiTablesBase = 0xE_0000;

    /// <summary>virtio-mmio transports: one page a slot from here, inside the MMIO hole, clear of the APICs.</summary>
    public const ulong VirtioMmioBase = 0xD000_0000;
    public const ulong VirtioMmioStride = 0x1000;
    public const int VirtioMmioSlots = 8;

    public const ulong IoApicBase = 0xFEC0_0000;
    public const ulong IoApicSize = 0x1000;
    /// <summary>Redirection entries of the IOAPIC (the 82093AA's and KVM's model): GSIs 0-23.</summary>
    public const int IoApicPins = 24;
    public const ulong LocalApicBase = 0xFEE0_0000;

    // ---- I/O ports ------------------------------------------------------------------------------------------

    public const ushort PicMasterPort = 0x20, PicSlavePort = 0xA0, PicElcrPort = 0x4D0;
    public const ushort PitPort = 0x40;
    /// <summary>System control port B (speaker gate, PIT channel 2 output).</summary>
    public const ushort SystemControlPort = 0x61;
    public const ushort I8042DataPort = 0x60, I8042CommandPort = 0x64;
    public const ushort RtcPort = 0x70;
    /// <summary>isa-debug-exit where a machine has it unless <c>--device isa-debug-exit,iobase=</c> moves it.</summary>
    public const ushort DebugExitPort = 0xF4;
    public const ushort Com1Port = 0x3F8;
    public const ushort FwCfgPort = 0x510;
    /// <summary>QEMU's ISA pvpanic port, where <c>--device pvpanic</c> puts it unless <c>ioport=</c> moves it.</summary>
    public const ushort PvPanicPort = 0x505;
    /// <summary>The ACPI sleep/reset register window (3 ports: control, status, reset).</summary>
    public const ushort AcpiSleepPort = 0x600;
    /// <summary>The Generic Event Device's event selector (the power button), 4 ports.</summary>
    public const ushort AcpiGedPort = 0x604;
    public const ushort PciConfigPort = 0xCF8;

    // ---- interrupt lines ------------------------------------------------------------------------------------

    public const int PitGsi = 0;
    public const int Com1Gsi = 4;
    public const int RtcGsi = 8;
    /// <summary>The Generic Event Device: GSI 9, the interrupt PCs give the ACPI SCI, which a hardware-reduced platform has no other use for.</summary>
    public const int AcpiGedGsi = 9;
    /// <summary>virtio-mmio slot i raises GSI 16 + i: lines no ISA device claims, level-triggered.</summary>
    public const int VirtioMmioFirstGsi = 16;

    /// <summary>The register window base and GSI of virtio-mmio slot <paramref name="index"/>.</summary>
    public static (ulong Base, int Gsi) VirtioMmioSlot(int index)
    {
        if (index < 0 || index >= VirtioMmioSlots)
            throw new ConfigurationException($"at most {VirtioMmioSlots} virtio-mmio devices fit the default layout (asked for device #{index + 1})");
        return (VirtioMmioBase + VirtioMmioStride * (ulong)index, VirtioMmioFirstGsi + index);
    }
}
