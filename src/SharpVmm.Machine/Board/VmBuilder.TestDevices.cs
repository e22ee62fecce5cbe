using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Legacy;
using SharpVmm.Devices.Testing;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Board;

public static partial class VmBuilder
{
    /// <summary>
    /// The debug-exit port (at 0xF4, one port, unless <c>--device isa-debug-exit</c> moves or widens it) and
    /// pc-testdev when asked for.
    /// </summary>
    private static void AddTestDevices(VmConfig config, IoBus bus, IIrqRouter? irqs, IVmControl control, List<VmDevice> named)
    {
        ushort exitBase = DebugExitPort.DefaultPort, exitSize = 1;
        foreach (var d in config.TestDevices)
            if (d.Driver == DeviceSpec.IsaDebugExit) (exitBase, exitSize) = (d.IoBase, d.IoSize);
        bus.RegisterPort(exitBase, exitSize, new DebugExitPort(control), "debug-exit");
        foreach (var d in config.TestDevices)
        {
            if (d.Driver != DeviceSpec.PcTestDev) continue;
            var t = new PcTestDev(irqs);
            bus.RegisterPort(PcTestDev.DataPort, 4, t.Data, "pc-testdev");
            bus.RegisterPort(PcTestDev.FlushPort, 4, t.Flush, "pc-testdev-flush-page");
            bus.RegisterPort(PcTestDev.ByteDataPort, 4, t.Data, "pc-testdev-byte");
            // The interrupt lines need interrupt controllers: a flat guest's machine has none.
            if (irqs is not null) bus.RegisterPort(PcTestDev.IrqPort, PcTestDev.IrqLines, t.Irq, "pc-testdev-irq");
            bus.RegisterMmio(PcTestDev.IomemBase, PcTestDev.IomemSize, t.Iomem, "pc-testdev-iomem");
            named.Add(new("pc-testdev", t));
        }
    }

    /// <summary>The <c>--device pvpanic</c> asked for, if any (the last one given).</summary>
    private static DeviceSpec? PvPanicDevice(VmConfig config)
    {
        DeviceSpec? pvpanic = null;
        foreach (var d in config.TestDevices) if (d.Driver == DeviceSpec.PvPanic) pvpanic = d;
        return pvpanic;
    }
}
