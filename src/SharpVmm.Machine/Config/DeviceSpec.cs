using System.Globalization;
using SharpVmm.Core;
using SharpVmm.Core.Platform;

namespace SharpVmm.Machine.Config;

/// <summary>
/// An optional test-facing device, as QEMU's <c>-device</c> names it: <c>--device pc-testdev</c> or
/// <c>--device isa-debug-exit[,iobase=PORT][,iosize=N]</c> (QEMU's defaults: iobase 0x501, iosize 2). A machine always
/// has a debug-exit port at 0xF4 (one port); naming isa-debug-exit moves it where the option says.
/// <c>--device pvpanic[,ioport=PORT]</c> (QEMU's default port 0x505) lets a Linux guest report its kernel panics.
/// </summary>
public sealed record DeviceSpec(string Driver, ushort IoBase = 0, ushort IoSize = 0)
{
    public const string PcTestDev = "pc-testdev";
    public const string IsaDebugExit = "isa-debug-exit";
    public const string PvPanic = "pvpanic";
    public const string Syntax = "pc-testdev|isa-debug-exit[,iobase=PORT][,iosize=N]|pvpanic[,ioport=PORT]";

    public static DeviceSpec Parse(string text)
    {
        var list = OptionList.WithHead(text);
        switch (list.Head)
        {
            case PcTestDev:
                if (list.Items.Count > 0) throw new ConfigurationException($"--device pc-testdev takes no options (got '{text}')");
                return new DeviceSpec(PcTestDev);
            case IsaDebugExit:
            {
                uint iobase = 0x501, iosize = 2;
                foreach (var (key, value, _, p) in list.Items)
                {
                    if (key == "iobase") iobase = Number(value, text);
                    else if (key == "iosize") iosize = Number(value, text);
                    else throw new ConfigurationException($"--device isa-debug-exit option '{p}' is not understood: use iobase=PORT and iosize=N");
                }
                if (iosize is 0 or > 0x100 || iobase + iosize > 0x10000)
                    throw new ConfigurationException($"--device '{text}': the ports iobase..iobase+iosize-1 must lie in 0..0xFFFF, with iosize 1 to 256");
                return new DeviceSpec(IsaDebugExit, (ushort)iobase, (ushort)iosize);
            }
            case PvPanic:
            {
                uint ioport = PcLayout.PvPanicPort;
                foreach (var (key, value, _, p) in list.Items)
                {
                    if (key != "ioport") throw new ConfigurationException($"--device pvpanic option '{p}' is not understood: use ioport=PORT");
                    ioport = Number(value, text);
                }
                if (ioport > 0xFFFF) throw new ConfigurationException($"--device '{text}': the port must lie in 0..0xFFFF");
                return new DeviceSpec(PvPanic, (ushort)ioport, 1);
            }
            default:
                throw new ConfigurationException($"--device '{list.Head}' is not a device SharpVmm has: use {Syntax}");
        }
    }

    private static uint Number(string value, string text)
    {
        bool ok = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint v)
            : uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        if (!ok) throw new ConfigurationException($"--device '{text}': '{value}' is not a number (write 0xf4 or 244)");
        return v;
    }
}
