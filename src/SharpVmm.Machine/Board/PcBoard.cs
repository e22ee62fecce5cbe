using Microsoft.Extensions.Logging;
using SharpVmm.Boot.Acpi;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Platform;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Acpi;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Firmware;
using SharpVmm.Devices.Interrupts;
using SharpVmm.Devices.Legacy;
using SharpVmm.Devices.Pci;
using SharpVmm.Devices.Rtc;
using SharpVmm.Devices.Serial;
using SharpVmm.Devices.Timers;
using SharpVmm.Devices.Virtio;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Board;

/// <summary>
/// SharpVmm's PC: puts each platform device where <see cref="PcLayout"/> says, on the bus and on its interrupt line,
/// names it for <see cref="VirtualMachine.Devices"/>, hands out virtio-mmio slots in order, and describes what it
/// built to the guest in ACPI from the same values. The same board serves both accelerators: under KVM the kernel
/// has the PICs, IOAPIC and PIT, under the emulator <see cref="AddInterruptControllers"/> adds ours.
/// </summary>
internal sealed class PcBoard(GuestMemory memory, IoBus bus, List<VmDevice> named, ILoggerFactory loggers)
{
    private readonly List<VirtioMmioDeviceSpec> _virtio = [];
    private bool _ged;
    private ushort? _pvPanicPort;

    /// <summary>The GSI router devices raise their lines through (the accelerator's); null on a bare machine.</summary>
    public IIrqRouter? Irqs { get; set; }

    /// <summary>COM1: a 16550 at 0x3F8 on GSI 4.</summary>
    public Uart16550 AddCom1(ICharBackend? backend)
    {
        var uart = new Uart16550(backend, Irqs is null ? null : new IrqLine(Irqs, PcLayout.Com1Gsi));
        bus.RegisterPort(PcLayout.Com1Port, 8, uart, "COM1");
        named.Add(new("com1", uart));
        return uart;
    }

    /// <summary>The i8042, for its reset line (Linux's reboot=k) and so probes find a controller.</summary>
    public void AddI8042(IVmControl control)
    {
        var i8042 = new I8042Controller(control);
        named.Add(new("i8042", i8042));
        bus.RegisterPort(PcLayout.I8042DataPort, 1, i8042.DataPort, "i8042-data");
        bus.RegisterPort(PcLayout.I8042CommandPort, 1, i8042.CommandPort, "i8042-command");
    }

    /// <summary>What KVM keeps in the kernel, for the emulator: the PIC pair with ELCR, the PIT and port B, the IOAPIC.</summary>
    public void AddInterruptControllers(EmulatedIrqChip irqChip, TimerService timers)
    {
        bus.RegisterPort(PcLayout.PicMasterPort, 2, irqChip.Pic.MasterPorts, "pic-master");
        bus.RegisterPort(PcLayout.PicSlavePort, 2, irqChip.Pic.SlavePorts, "pic-slave");
        bus.RegisterPort(PcLayout.PicElcrPort, 2, irqChip.Pic.ElcrPorts, "pic-elcr");
        var pit = new Pit8254(timers, new IrqLine(irqChip, PcLayout.PitGsi));
        bus.RegisterPort(PcLayout.PitPort, Pit8254.PortCount, pit, "pit");
        named.Add(new("irqchip", irqChip));
        named.Add(new("pit", pit));
        var port61 = new SystemControlPort(pit);
        bus.RegisterPort(PcLayout.SystemControlPort, 1, port61, "port61");
        named.Add(new("port61", port61));
        bus.RegisterMmio(PcLayout.IoApicBase, PcLayout.IoApicSize, irqChip.IoApic, "ioapic");
    }

    /// <summary>The CMOS RTC (KVM has none of its own, so both accelerators get ours), told the RAM size as a BIOS would.</summary>
    public void AddRtc(TimerService timers, ulong memoryBytes)
    {
        var rtc = new CmosRtc(timers, new IrqLine(Irqs!, PcLayout.RtcGsi));
        rtc.SetMemorySize(Math.Min(memoryBytes, PcLayout.MmioHoleStart), memoryBytes > PcLayout.MmioHoleStart ? memoryBytes - PcLayout.MmioHoleStart : 0);
        bus.RegisterPort(PcLayout.RtcPort, CmosRtc.PortCount, rtc, "rtc");
        named.Add(new("rtc", rtc));
    }

    /// <summary>The ACPI sleep/reset registers: S5 powers off, RESET_REG resets.</summary>
    public void AddAcpiSleep(IVmControl control)
    {
        var sleep = new AcpiSleepDevice(r =>
        {
            if (r == AcpiPowerRequest.PowerOff) control.RequestPowerOff(0);
            else control.RequestReset();
        });
        bus.RegisterPort(PcLayout.AcpiSleepPort, AcpiSleepDevice.WindowSize, sleep, "acpi-sleep");
        named.Add(new("acpi-sleep", sleep));
    }

    /// <summary>The power button (QMP system_powerdown): a Generic Event Device, as on QEMU's microvm.</summary>
    public AcpiGed AddPowerButton()
    {
        var ged = new AcpiGed(new IrqLine(Irqs!, PcLayout.AcpiGedGsi));
        bus.RegisterPort(PcLayout.AcpiGedPort, AcpiGed.WindowSize, ged, "acpi-ged");
        named.Add(new("acpi-ged", ged));
        _ged = true;
        return ged;
    }

    /// <summary>
    /// QEMU's ISA pvpanic port at <paramref name="port"/> (<see cref="PcLayout.PvPanicPort"/> unless moved);
    /// <paramref name="onEvent"/> gets the events the guest writes. The ACPI tables describe it from then on.
    /// </summary>
    public void AddPvPanic(ushort port, Action<byte> onEvent)
    {
        bus.RegisterPort(port, 1, new PvPanicPort(onEvent), "pvpanic");
        _pvPanicPort = port;
    }

    /// <summary>fw_cfg (what QEMU's firmware interface tells a guest: CPUs, RAM, command line) and an empty PCI bus to probe.</summary>
    public void AddFirmwareInterfaces(int cpus, ulong memoryBytes, string? commandLine)
    {
        bus.RegisterPort(PcLayout.FwCfgPort, FwCfg.WindowSize, FwCfg.ForMachine(cpus, memoryBytes, commandLine), "fw_cfg");
        bus.RegisterPort(PcLayout.PciConfigPort, EmptyPciBus.WindowSize, new EmptyPciBus(), "pci-config");
    }

    /// <summary>
    /// A virtio-mmio transport for <paramref name="device"/> in the next free slot (window and GSI from
    /// <see cref="PcLayout.VirtioMmioSlot"/>), level-triggered: the transport holds its line until the driver acks.
    /// The device goes under <paramref name="name"/>, its transport (queues, negotiation) beside it.
    /// </summary>
    public void AddVirtio(IVirtioDevice device, string name)
    {
        var (b, gsi) = PcLayout.VirtioMmioSlot(_virtio.Count);
        var transport = new VirtioMmioTransport(device, memory, new IrqLine(Irqs!, gsi), loggers.CreateLogger("SharpVmm.Virtio"));
        bus.RegisterMmio(b, VirtioMmioRegisters.WindowSize, transport, name);
        named.Add(new(name, device));
        named.Add(new(name + ".transport", transport));
        _virtio.Add(new VirtioMmioDeviceSpec(b, (uint)gsi, LevelTriggered: true));
    }

    /// <summary>What the ACPI tables say of this board: the layout's addresses and ports, and the virtio slots handed out.</summary>
    public AcpiSpec DescribeAcpi(int cpus, byte ioApicId) => new()
    {
        CpuCount = cpus,
        LocalApicAddress = (uint)PcLayout.LocalApicBase,
        IoApicId = ioApicId,
        IoApicAddress = (uint)PcLayout.IoApicBase,
        IoApicPins = PcLayout.IoApicPins,
        I8042 = false,
        SleepPort = PcLayout.AcpiSleepPort,
        VirtioMmioDevices = [.. _virtio],
        Ged = _ged ? new AcpiGedSpec(PcLayout.AcpiGedPort, PcLayout.AcpiGedGsi) : null,
        PvPanicPort = _pvPanicPort,
    };

    /// <summary>Writes the tables at <see cref="PcLayout.AcpiTablesBase"/>; returns the RSDP's address for the loader.</summary>
    public ulong WriteAcpiTables(int cpus, byte ioApicId) => AcpiTables.Build(DescribeAcpi(cpus, ioApicId), memory, PcLayout.AcpiTablesBase);
}
