using SharpVmm.Core.Platform;

namespace SharpVmm.Boot.Acpi;

/// <summary>
/// The Differentiated System Description Table: the devices the OS cannot discover by itself, in AML.
/// <code>
/// Scope (\_SB) {
///   Device (COM1) { Name (_HID, EisaId ("PNP0501")) Name (_UID, Zero)
///                   Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 0x01, 0x08) IRQ (Edge, ActiveHigh, Exclusive) {4} }) }
///   Device (RTC_) { Name (_HID, EisaId ("PNP0B00")) Name (_UID, Zero)
///                   Name (_CRS, ResourceTemplate () { IO (Decode16, 0x70, 0x70, 0x01, 0x02) IRQ (Edge, ActiveHigh, Exclusive) {8} }) }
///   Device (VR00) { Name (_HID, "LNRO0005") Name (_UID, Zero)
///                   Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, base, 0x200)
///                                                     Interrupt (ResourceConsumer, Edge|Level, ActiveHigh, Exclusive) { gsi } }) }
///   ...
///   Device (PWRB) { Name (_HID, EisaId ("PNP0C0C")) Name (_UID, Zero) }                 (with a GED)
///   Device (GED_) { Name (_HID, "ACPI0013") Name (_UID, Zero)
///                   Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { gsi } })
///                   OperationRegion (EREG, SystemIO, port, 4)
///                   Field (EREG, DWordAcc, NoLock, WriteAsZeros) { ESEL, 32 }
///                   Method (_EVT, 1, Serialized) { Local0 = ESEL  If (Local0 &amp; 2) { Notify (PWRB, 0x80) } } }
///   Device (PEVT) { Name (_HID, "QEMU0001") Name (_UID, Zero)                            (with pvpanic)
///                   Name (_CRS, ResourceTemplate () { IO (Decode16, port, port, 0x01, 0x01) }) }
/// }
/// Name (\_S5, Package (0x04) { 0x05, Zero, Zero, Zero })
/// </code>
/// The power button is QEMU microvm's design: a hardware-reduced platform has no fixed-feature button and no SCI, so
/// a Generic Event Device interrupt runs _EVT, which reads (and so clears) the pending events and notifies the
/// control-method button; Linux's evged driver calls _EVT and its button driver turns the notify into KEY_POWER.
/// Revision 2 so AML integers are 64 bits wide. The top-level names are written without the root prefix: the DSDT's
/// own scope is the root, and that is the shorter encoding iasl produces too, so our bytes equal a compiled ASL file.
/// </summary>
public static class Dsdt
{
    public const string Signature = "DSDT";
    public const byte Revision = 2;
    public const ushort Com1Port = PcLayout.Com1Port;
    public const int Com1Irq = PcLayout.Com1Gsi;
    public const ushort RtcPort = PcLayout.RtcPort;
    public const int RtcIrq = PcLayout.RtcGsi;
    public const string VirtioMmioHid = "LNRO0005";

    public static byte[] Build(AcpiSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var devices = new List<byte[]>();
        if (spec.Com1) devices.Add(Com1Device());
        if (spec.CmosRtc) devices.Add(RtcDevice());
        for (int i = 0; i < spec.VirtioMmioDevices.Count; i++)
            devices.Add(VirtioMmioDevice(i, spec.VirtioMmioDevices[i]));
        if (spec.Ged is { } ged)
        {
            devices.Add(PowerButtonDevice());
            devices.Add(GedDevice(ged));
        }
        if (spec.PvPanicPort is { } pvpanic) devices.Add(PvPanicDevice(pvpanic));

        byte[] aml = Aml.Concat(
            Aml.Scope("_SB", [.. devices]),
            S5Package());

        var t = Sdt.Create(Signature, Sdt.HeaderSize + aml.Length, Revision, spec);
        aml.CopyTo(t, Sdt.HeaderSize);
        Sdt.SetChecksum(t);
        return t;
    }

    public static byte[] Com1Device() => Aml.Device("COM1",
        Aml.Name("_HID", Aml.EisaId("PNP0501")),
        Aml.Name("_UID", Aml.Integer(0)),
        Aml.Name("_CRS", new ResourceTemplate()
            .Io(Com1Port, Com1Port, 0x01, 0x08)
            .Irq(edge: true, activeLow: false, shared: false, Com1Irq)
            .ToAml()));

    /// <summary>
    /// The CMOS RTC (PNP0B00, ports 0x70-0x71, IRQ 8). Without it a hardware-reduced Linux guest, which has no legacy
    /// PIC and so no ISA IRQ 8 of its own, fails to probe rtc_cmos; with it the IRQ is routed through IOAPIC pin 8.
    /// </summary>
    public static byte[] RtcDevice() => Aml.Device("RTC",
        Aml.Name("_HID", Aml.EisaId("PNP0B00")),
        Aml.Name("_UID", Aml.Integer(0)),
        Aml.Name("_CRS", new ResourceTemplate()
            .Io(RtcPort, RtcPort, 0x01, 0x02)
            .Irq(edge: true, activeLow: false, shared: false, RtcIrq)
            .ToAml()));

    /// <summary>Device VRnn (nn = index in hex) with _HID "LNRO0005", _UID index, its window and interrupt.</summary>
    public static byte[] VirtioMmioDevice(int index, VirtioMmioDeviceSpec device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (index is < 0 or > 0xFF) throw new BootException($"at most 256 virtio-mmio devices can be described, not {index + 1}");
        if (device.Base + device.Size > 1UL << 32 || device.Base + device.Size < device.Base)
            throw new BootException($"virtio-mmio device {index} at 0x{device.Base:x} must lie below 4 GiB (Memory32Fixed)");
        return Aml.Device($"VR{index:X2}",
            Aml.Name("_HID", Aml.String(VirtioMmioHid)),
            Aml.Name("_UID", Aml.Integer((ulong)index)),
            Aml.Name("_CRS", new ResourceTemplate()
                .Memory32Fixed(writable: true, (uint)device.Base, device.Size)
                .Interrupt(consumer: true, edge: !device.LevelTriggered, activeLow: false, shared: false, device.Gsi)
                .ToAml()));
    }

    public const string GedHid = "ACPI0013";
    public const string PowerButtonHid = "PNP0C0C";
    public const string PvPanicHid = "QEMU0001";
    /// <summary>The notify value of a power button press (ACPI spec, "Device Object Notification Values").</summary>
    public const byte ButtonPressed = 0x80;

    /// <summary>The control-method power button the GED notifies.</summary>
    public static byte[] PowerButtonDevice() => Aml.Device("PWRB",
        Aml.Name("_HID", Aml.EisaId(PowerButtonHid)),
        Aml.Name("_UID", Aml.Integer(0)));

    /// <summary>The Generic Event Device: its interrupt runs _EVT, which reads the event selector and presses PWRB.</summary>
    public static byte[] GedDevice(AcpiGedSpec ged)
    {
        ArgumentNullException.ThrowIfNull(ged);
        return Aml.Device("GED",
            Aml.Name("_HID", Aml.String(GedHid)),
            Aml.Name("_UID", Aml.Integer(0)),
            Aml.Name("_CRS", new ResourceTemplate()
                .Interrupt(consumer: true, edge: false, activeLow: false, shared: false, ged.Gsi)
                .ToAml()),
            Aml.OperationRegion("EREG", Aml.SystemIo, ged.Port, AcpiGedRegisters.WindowSize),
            Aml.Field("EREG", Aml.DWordAcc | Aml.WriteAsZeros, ("ESEL", 32)),
            Aml.Method("_EVT", 1, serialized: true,
                Aml.Store(Aml.Ref("ESEL"), Aml.Local(0)),
                Aml.If(Aml.And(Aml.Local(0), Aml.Integer(AcpiGedRegisters.PowerButtonEvent)),
                    Aml.Notify("PWRB", ButtonPressed))));
    }

    /// <summary>QEMU's pvpanic as Linux's pvpanic-mmio driver finds it: _HID QEMU0001 with one I/O port.</summary>
    public static byte[] PvPanicDevice(ushort port) => Aml.Device("PEVT",
        Aml.Name("_HID", Aml.String(PvPanicHid)),
        Aml.Name("_UID", Aml.Integer(0)),
        Aml.Name("_CRS", new ResourceTemplate().Io(port, port, 0x01, 0x01).ToAml()));

    /// <summary>\_S5: SLP_TYPa for soft-off, then SLP_TYPb and two reserved values (unused on a hardware-reduced platform).</summary>
    public static byte[] S5Package() => Aml.Name("_S5", Aml.Package(
        Aml.Integer(AcpiSleepRegisters.S5SleepType), Aml.Integer(0), Aml.Integer(0), Aml.Integer(0)));
}
