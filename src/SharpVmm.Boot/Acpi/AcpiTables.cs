using SharpVmm.Memory;
using SharpVmm.Core.Platform;

namespace SharpVmm.Boot.Acpi;

/// <summary>
/// Builds the VMM's ACPI tables into guest RAM: RSDP, XSDT, FADT, MADT and DSDT, one after the other from a base
/// address, each 16-byte aligned. The default base puts the RSDP at the start of the BIOS area, where an OS that
/// scans 0xE0000-0xFFFFF for "RSD PTR " finds it, and the whole set (a few hundred bytes per device) stays inside the
/// reserved BIOS area. Linux is also handed the RSDP address in the zero page.
/// </summary>
public static class AcpiTables
{
    public const ulong DefaultBaseAddress = PcLayout.AcpiTablesBase;
    private const ulong Align = 16;

    /// <summary>Writes the tables at <paramref name="baseAddress"/> and returns the RSDP address (= the base).</summary>
    public static ulong Build(AcpiSpec spec, GuestMemory memory, ulong baseAddress = DefaultBaseAddress)
        => Build(spec, memory, baseAddress, out _);

    /// <summary>As <see cref="Build(AcpiSpec, GuestMemory, ulong)"/>; <paramref name="length"/> is how many bytes the tables span from the base.</summary>
    public static ulong Build(AcpiSpec spec, GuestMemory memory, ulong baseAddress, out ulong length)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(memory);
        Validate(spec);
        if (baseAddress >= uint.MaxValue)
            throw new BootException($"ACPI tables must lie below 4 GiB (the FADT's DSDT field is 32 bits), not at 0x{baseAddress:x}");
        if ((baseAddress & (Align - 1)) != 0)
            throw new BootException($"ACPI tables must start on a 16-byte boundary (the RSDP is only found there), not at 0x{baseAddress:x}");

        // Layout first: the FADT and XSDT contain the addresses of the tables after them.
        ulong rsdp = baseAddress;
        var dsdtBytes = Dsdt.Build(spec);
        var madtBytes = Madt.Build(spec);
        ulong xsdt = AlignUp(rsdp + Rsdp.Length);
        ulong fadt = AlignUp(xsdt + Sdt.HeaderSize + 2 * 8);
        ulong madt = AlignUp(fadt + Fadt.Length);
        ulong dsdt = AlignUp(madt + (ulong)madtBytes.Length);
        ulong end = dsdt + (ulong)dsdtBytes.Length;
        length = end - baseAddress;

        if (end > uint.MaxValue + 1UL)
            throw new BootException($"ACPI tables must lie below 4 GiB (the FADT's DSDT field is 32 bits), not at 0x{baseAddress:x}");
        if (!memory.IsRam(baseAddress, length))
            throw new BootException($"ACPI tables need 0x{length:x} bytes of RAM at 0x{baseAddress:x}, which is not guest RAM: choose another base address");
        if (baseAddress < LowMemoryLayout.OneMiB && end > LowMemoryLayout.OneMiB)
            throw new BootException($"ACPI tables at 0x{baseAddress:x} would run 0x{end - LowMemoryLayout.OneMiB:x} bytes past the BIOS area into the kernel's load address: fewer devices or another base address");

        memory.Clear(baseAddress, length);
        memory.Write(rsdp, Rsdp.Build(spec, xsdt));
        memory.Write(xsdt, Xsdt.Build(spec, [fadt, madt]));
        memory.Write(fadt, Fadt.Build(spec, dsdt));
        memory.Write(madt, madtBytes);
        memory.Write(dsdt, dsdtBytes);
        return rsdp;
    }

    private static void ValidateGed(AcpiSpec spec)
    {
        if (spec.PvPanicPort is { } pv && ((spec.Com1 && pv >= Dsdt.Com1Port && pv < Dsdt.Com1Port + 8) || PortsOverlap(spec.SleepPort, pv, 1)))
            throw new BootException($"the pvpanic port 0x{pv:x} collides with COM1 or the ACPI sleep registers");
        if (spec.Ged is not { } ged) return;
        if (ged.Port > 0xFFFF - AcpiGedRegisters.WindowSize + 1)
            throw new BootException($"the ACPI event register needs {AcpiGedRegisters.WindowSize} ports from 0x{ged.Port:x}");
        if (PortsOverlap(spec.SleepPort, ged.Port, AcpiGedRegisters.WindowSize) || (spec.Com1 && ged.Port < Dsdt.Com1Port + 8 && ged.Port + AcpiGedRegisters.WindowSize > Dsdt.Com1Port)
            || (spec.CmosRtc && ged.Port < Dsdt.RtcPort + 2 && ged.Port + AcpiGedRegisters.WindowSize > Dsdt.RtcPort)
            || (spec.PvPanicPort is { } p && p >= ged.Port && p < ged.Port + AcpiGedRegisters.WindowSize))
            throw new BootException($"the ACPI event register at port 0x{ged.Port:x} collides with another device's ports: choose another (0x{AcpiGedRegisters.DefaultPort:x} is the default)");
        if (ged.Gsi < spec.IoApicGsiBase || ged.Gsi >= spec.IoApicGsiBase + (uint)spec.IoApicPins)
            throw new BootException($"the ACPI event device uses GSI {ged.Gsi}, but the IOAPIC serves GSIs {spec.IoApicGsiBase}-{spec.IoApicGsiBase + (uint)spec.IoApicPins - 1}");
        if (ged.Gsi == spec.IoApicGsiBase + 2 || (spec.Com1 && ged.Gsi == spec.IoApicGsiBase + Dsdt.Com1Irq) || (spec.CmosRtc && ged.Gsi == spec.IoApicGsiBase + Dsdt.RtcIrq))
            throw new BootException($"the ACPI event device uses GSI {ged.Gsi}, which the timer (2), COM1 (4) or the RTC (8) already use");
        foreach (var d in spec.VirtioMmioDevices)
            if (d.Gsi == ged.Gsi) throw new BootException($"the ACPI event device and a virtio-mmio device both use GSI {ged.Gsi}");
    }

    private static bool PortsOverlap(ushort sleepPort, ushort start, int count)
        => sleepPort < start + count && sleepPort + AcpiSleepRegisters.WindowSize > start;

    private static ulong AlignUp(ulong a) => (a + Align - 1) & ~(Align - 1);

    private static void Validate(AcpiSpec spec)
    {
        if (spec.IoApicPins is < 1 or > 240)
            throw new BootException($"an IOAPIC has 1 to 240 redirection entries, not {spec.IoApicPins}");
        if (spec.SleepPort > 0xFFFF - AcpiSleepRegisters.WindowSize + 1)
            throw new BootException($"the ACPI sleep/reset registers need {AcpiSleepRegisters.WindowSize} ports from 0x{spec.SleepPort:x}");
        if ((spec.Com1 && PortsOverlap(spec.SleepPort, Dsdt.Com1Port, 8)) || (spec.CmosRtc && PortsOverlap(spec.SleepPort, Dsdt.RtcPort, 2)))
            throw new BootException($"the ACPI sleep port 0x{spec.SleepPort:x} collides with COM1 (0x3F8) or the RTC (0x70): choose another (0x600 is the default)");

        ValidateGed(spec);

        var devices = spec.VirtioMmioDevices;
        for (int i = 0; i < devices.Count; i++)
        {
            var d = devices[i];
            if (d.Size == 0 || d.Base + d.Size > 1UL << 32 || d.Base + d.Size < d.Base)
                throw new BootException($"virtio-mmio device {i} at 0x{d.Base:x}+0x{d.Size:x} must be non-empty and below 4 GiB");
            if (d.Gsi < spec.IoApicGsiBase || d.Gsi >= spec.IoApicGsiBase + (uint)spec.IoApicPins)
                throw new BootException($"virtio-mmio device {i} uses GSI {d.Gsi}, but the IOAPIC serves GSIs {spec.IoApicGsiBase}-{spec.IoApicGsiBase + (uint)spec.IoApicPins - 1}");
            if (d.Gsi == spec.IoApicGsiBase + 2 || (spec.Com1 && d.Gsi == spec.IoApicGsiBase + Dsdt.Com1Irq) || (spec.CmosRtc && d.Gsi == spec.IoApicGsiBase + Dsdt.RtcIrq))
                throw new BootException($"virtio-mmio device {i} uses GSI {d.Gsi}, which the timer (2), COM1 (4) or the RTC (8) already use: choose another, e.g. 5-7 or 9-23");
            for (int j = 0; j < i; j++)
            {
                var o = devices[j];
                if (o.Gsi == d.Gsi)
                    throw new BootException($"virtio-mmio devices {j} and {i} both use GSI {d.Gsi}: give each its own");
                if (d.Base < o.Base + o.Size && o.Base < d.Base + d.Size)
                    throw new BootException($"virtio-mmio devices {j} and {i} have overlapping windows at 0x{o.Base:x} and 0x{d.Base:x}");
            }
        }
    }
}
