using SharpVmm.Core;
using SharpVmm.Devices.Net;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// -device and -netdev: the serial port and the virtio devices SharpVmm has. The -pci and -device (virtio-mmio)
/// flavours both become SharpVmm's virtio-mmio devices; PCI addresses libvirt assigns are accepted and have no effect.
/// </summary>
public static class QemuDeviceParser
{
    /// <summary>The device types -device accepts (also what qom-list-types and -device help report).</summary>
    public static readonly string[] Types =
    [
        "isa-serial",
        "virtio-blk-pci", "virtio-blk-device",
        "virtio-net-pci", "virtio-net-device",
        "virtio-rng-pci", "virtio-rng-device",
        "virtio-balloon-pci", "virtio-balloon-device",
        DeviceSpec.PcTestDev, DeviceSpec.IsaDebugExit, DeviceSpec.PvPanic,
    ];

    private static readonly string[] BusKeys = ["bus", "addr", "id", "bootindex", "multifunction"];

    public static void Parse(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-device", text, "driver");
        string driver = o.Require("driver", "a device");
        if (driver == "help")
        {
            q.Help ??= "device";
            return;
        }
        string? id = o.Get("id");
        switch (driver)
        {
            case "isa-serial":
                if (q.SerialChardev is not null) throw new QemuArgException("-device", "SharpVmm has one serial port (COM1): a second isa-serial is not supported");
                q.SerialChardev = o.Require("chardev", "isa-serial");
                q.SerialDeviceId = id;
                if (!q.Chardevs.ContainsKey(q.SerialChardev)) throw new QemuArgException("-device", $"isa-serial: chardev '{q.SerialChardev}' is not defined");
                if (o.Get("index") is { } index && index != "0") throw new QemuArgException("-device", $"isa-serial index={index}: SharpVmm has COM1 (index 0) only");
                break;
            case "virtio-blk-pci" or "virtio-blk-device":
                string drive = o.Require("drive", driver);
                if (!q.Drives.ContainsKey(drive)) throw new QemuArgException("-device", $"{driver}: drive '{drive}' is not defined");
                o.Accept(BusKeys);
                q.Disks.Add(new QemuDiskDevice(id, drive));
                break;
            case "virtio-net-pci" or "virtio-net-device":
                string netdev = o.Require("netdev", driver);
                if (!q.Netdevs.ContainsKey(netdev)) throw new QemuArgException("-device", $"{driver}: netdev '{netdev}' is not defined");
                string? mac = o.Get("mac");
                if (mac is not null)
                {
                    try { MacAddress.Parse(mac); }
                    catch (ConfigurationException e) { throw new QemuArgException("-device", e.Message); }
                }
                o.Accept(BusKeys);
                o.Accept("romfile"); // no option ROM without firmware: libvirt writes romfile= empty or a path nothing reads
                q.Nics.Add(new QemuNicDevice(id, netdev, mac));
                break;
            case "virtio-rng-pci" or "virtio-rng-device":
                if (q.Rng) throw new QemuArgException("-device", "SharpVmm has at most one virtio-rng device");
                if (o.Get("rng") is { } backend) throw new QemuArgException("-device", $"{driver}: rng={backend}: SharpVmm's rng reads the host's random number generator; give no rng=");
                o.Accept(BusKeys);
                q.Rng = true;
                break;
            case "virtio-balloon-pci" or "virtio-balloon-device":
                if (q.Balloon) throw new QemuArgException("-device", "SharpVmm has at most one virtio-balloon device");
                o.Accept(BusKeys);
                q.Balloon = true;
                break;
            case DeviceSpec.PcTestDev:
                o.Accept(BusKeys);
                q.TestDevices.Add(new DeviceSpec(DeviceSpec.PcTestDev));
                break;
            case DeviceSpec.IsaDebugExit:
                // The same device as `run --device isa-debug-exit,...`, with QEMU's defaults (iobase 0x501, iosize 2).
                string spec = DeviceSpec.IsaDebugExit
                    + (o.Get("iobase") is { } iobase ? ",iobase=" + iobase : "")
                    + (o.Get("iosize") is { } iosize ? ",iosize=" + iosize : "");
                o.Accept(BusKeys);
                try { q.TestDevices.Add(DeviceSpec.Parse(spec)); }
                catch (ConfigurationException e) { throw new QemuArgException("-device", e.Message); }
                break;
            case DeviceSpec.PvPanic:
                // libvirt's <panic model='isa'/>: the ISA pvpanic, described in ACPI for the guest's pvpanic driver.
                o.Accept(BusKeys);
                try { q.TestDevices.Add(DeviceSpec.Parse(DeviceSpec.PvPanic + (o.Get("ioport") is { } ioport ? ",ioport=" + ioport : ""))); }
                catch (ConfigurationException e) { throw new QemuArgException("-device", e.Message); }
                break;
            default:
                throw new QemuArgException("-device", $"'{driver}' is not supported by SharpVmm (supported: {string.Join(", ", Types)})");
        }
        o.RejectUnused($"-device {driver}");
    }

    public static void ParseNetdev(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-netdev", text, "type");
        string type = o.Require("type", "a netdev");
        string id = o.Require("id", "a netdev");
        if (q.Netdevs.ContainsKey(id)) throw new QemuArgException("-netdev", $"id '{id}' is used twice");
        QemuNetdev dev;
        switch (type)
        {
            case "user":
                dev = new QemuNetdev(id, NetBackendKind.User, null);
                break;
            case "tap":
                if (o.Get("fd") is not null || o.Get("fds") is not null)
                    throw new QemuArgException("-netdev", "tap with fd= (a tap libvirt opened) is not supported by SharpVmm: use <interface type='ethernet'> with a <target dev=.../> SharpVmm opens by name");
                string ifname = o.Require("ifname", "tap");
                o.Allow("script", "no");
                o.Allow("downscript", "no");
                dev = new QemuNetdev(id, NetBackendKind.Tap, ifname);
                break;
            default:
                throw new QemuArgException("-netdev", $"type '{type}' is not supported by SharpVmm (supported: user, tap)");
        }
        o.RejectUnused($"-netdev {type}");
        q.Netdevs[id] = dev;
    }
}
