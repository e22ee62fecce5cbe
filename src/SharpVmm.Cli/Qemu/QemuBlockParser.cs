namespace SharpVmm.Cli.Qemu;

/// <summary>
/// -blockdev and -drive for image files. libvirt writes a protocol node (driver=file) and a format node (qcow2 or
/// raw) on top of it, and gives the device the format node; a device on the file node alone reads it raw.
/// </summary>
public static class QemuBlockParser
{
    public static void ParseBlockdev(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-blockdev", text);
        string driver = o.Require("driver", "a block node");
        string node = o.Require("node-name", driver);
        if (q.Drives.ContainsKey(node)) throw new QemuArgException("-blockdev", $"node-name '{node}' is used twice");
        bool readOnly = o.GetBool("read-only") ?? false;
        // auto-read-only: open read-only when the file cannot be written; SharpVmm opens as the format node asks.
        o.Accept("auto-read-only");
        o.Allow("discard", "unmap", "ignore");
        o.Allow("cache.direct", "off");
        o.Allow("cache.no-flush", "off");
        switch (driver)
        {
            case "file":
                q.Drives[node] = new QemuDrive(node, o.Require("filename", "a file node"), "raw", readOnly, Protocol: true);
                break;
            case "qcow2" or "raw":
                string file = o.Require("file", $"a {driver} node");
                // libvirt writes backing=null for an image without a backing file; a backing node of its own is not supported.
                if (driver == "qcow2") o.Allow("backing", "null");
                if (!q.Drives.TryGetValue(file, out var under) || !under.Protocol)
                    throw new QemuArgException("-blockdev", $"{driver} node '{node}': file '{file}' is not a file node defined before it");
                q.Drives[node] = new QemuDrive(node, under.Path, driver, readOnly || under.ReadOnly);
                break;
            default:
                throw new QemuArgException("-blockdev", $"driver '{driver}' is not supported by SharpVmm (supported: file, qcow2, raw)");
        }
        o.RejectUnused($"-blockdev {driver}");
    }

    public static void ParseDrive(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-drive", text);
        string path = o.Require("file", "a drive");
        string format = o.Get("format") ?? throw new QemuArgException("-drive", "give format=raw or format=qcow2: SharpVmm does not guess formats");
        if (format is not ("raw" or "qcow2")) throw new QemuArgException("-drive", $"format '{format}' is not supported by SharpVmm (supported: raw, qcow2)");
        bool readOnly = o.GetBool("readonly") ?? false;
        string iface = o.Get("if") ?? "none";
        string id = o.Get("id") ?? $"drive{q.Drives.Count}";
        if (q.Drives.ContainsKey(id)) throw new QemuArgException("-drive", $"id '{id}' is used twice");
        o.Allow("media", "disk");
        o.Allow("cache", "writeback", "none");
        o.Allow("discard", "unmap", "ignore");
        o.RejectUnused("-drive");
        q.Drives[id] = new QemuDrive(id, path, format, readOnly);
        switch (iface)
        {
            case "none": break;
            case "virtio": q.Disks.Add(new QemuDiskDevice(null, id)); break;
            default: throw new QemuArgException("-drive", $"if={iface} is not supported by SharpVmm (use if=virtio, or if=none with -device virtio-blk-pci)");
        }
    }
}
