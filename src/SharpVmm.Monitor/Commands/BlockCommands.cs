using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SharpVmm.Block;
using SharpVmm.Block.Qcow2;
using SharpVmm.Machine;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// query-block and HMP <c>info block</c>, in QEMU 7.2's shapes for drives given with <c>-drive if=virtio</c>:
/// drives named virtio0, virtio1, ..., each attached to its virtio-blk device (qdev is SharpVmm's device id).
/// The disks are the <see cref="BlockDeviceInfo"/> records the builder put in <see cref="VirtualMachine.Devices"/>.
/// </summary>
public static class BlockCommands
{
    public static void Register(QmpCommandTable table, VmMonitor vm)
    {
        table.Register("query-block", _ => Query(vm.Vm));
        table.Register("query-blockstats", call => QueryStats(vm, call.GetBool("query-nodes") ?? false),
            QmpParameter.Opt("query-nodes", QmpType.Boolean));
    }

    /// <summary>
    /// query-blockstats: without query-nodes one entry per disk with its device's counters (QEMU accounts at the
    /// device's BlockBackend); with it one entry per named node, whose own counters QEMU leaves at zero but for the
    /// highest offset written (the node's allocation as libvirt shows it).
    /// </summary>
    public static JsonArray QueryStats(VmMonitor vm, bool nodes)
    {
        var result = new JsonArray();
        var drives = Drives(vm.Vm);
        for (int i = 0; i < drives.Count; i++)
        {
            var d = drives[i];
            var names = vm.BlockNames?.Invoke(i, d) ?? new BlockNodeNames(d.DriveId, d.DeviceId, NodeName(i));
            if (nodes)
                result.Add((JsonNode)new JsonObject { ["device"] = "", ["node-name"] = names.Node, ["stats"] = NodeStats(d.Stats) });
            else
                result.Add((JsonNode)new JsonObject { ["device"] = names.Device, ["qdev"] = names.Qdev, ["node-name"] = names.Node, ["stats"] = DeviceStats(d.Stats) });
        }
        return result;
    }

    /// <summary>QEMU's BlockDeviceStats of a device (7.2's members; SharpVmm merges no requests and keeps no timed intervals).</summary>
    public static JsonObject DeviceStats(BlockStats s)
    {
        var o = new JsonObject
        {
            ["rd_bytes"] = s.Bytes(BlockRequestKind.Read),
            ["wr_bytes"] = s.Bytes(BlockRequestKind.Write),
            ["unmap_bytes"] = s.Bytes(BlockRequestKind.Unmap),
            ["rd_operations"] = s.Operations(BlockRequestKind.Read),
            ["wr_operations"] = s.Operations(BlockRequestKind.Write),
            ["flush_operations"] = s.Operations(BlockRequestKind.Flush),
            ["unmap_operations"] = s.Operations(BlockRequestKind.Unmap),
            ["rd_total_time_ns"] = s.TotalTimeNs(BlockRequestKind.Read),
            ["wr_total_time_ns"] = s.TotalTimeNs(BlockRequestKind.Write),
            ["flush_total_time_ns"] = s.TotalTimeNs(BlockRequestKind.Flush),
            ["unmap_total_time_ns"] = s.TotalTimeNs(BlockRequestKind.Unmap),
            ["wr_highest_offset"] = s.HighestWriteOffset,
            ["rd_merged"] = 0,
            ["wr_merged"] = 0,
            ["unmap_merged"] = 0,
        };
        if (s.IdleTimeNs is { } idle) o["idle_time_ns"] = idle;
        o["failed_rd_operations"] = s.FailedOperations(BlockRequestKind.Read);
        o["failed_wr_operations"] = s.FailedOperations(BlockRequestKind.Write);
        o["failed_flush_operations"] = s.FailedOperations(BlockRequestKind.Flush);
        o["failed_unmap_operations"] = s.FailedOperations(BlockRequestKind.Unmap);
        o["invalid_rd_operations"] = s.InvalidOperations(BlockRequestKind.Read);
        o["invalid_wr_operations"] = s.InvalidOperations(BlockRequestKind.Write);
        o["invalid_flush_operations"] = s.InvalidOperations(BlockRequestKind.Flush);
        o["invalid_unmap_operations"] = s.InvalidOperations(BlockRequestKind.Unmap);
        o["account_invalid"] = true;
        o["account_failed"] = true;
        o["timed_stats"] = new JsonArray();
        return o;
    }

    private static JsonObject NodeStats(BlockStats s)
    {
        var o = DeviceStats(new BlockStats());
        o.Remove("idle_time_ns");
        o["wr_highest_offset"] = s.HighestWriteOffset;
        return o;
    }

    /// <summary>
    /// QEMU's BLOCK_IMAGE_CORRUPTED: sent when a qcow2 disk refused a write that would have landed on its metadata
    /// (the image is then marked corrupt and takes no more writes, so the event is always fatal).
    /// </summary>
    public static void RegisterEvents(VirtualMachine vm, Action<string, JsonObject?> emit)
    {
        int node = 0;
        foreach (var d in Drives(vm))
        {
            var nodeName = NodeName(node++);
            if (Unwrap(d.Image) is not Qcow2Image q) continue;
            var device = d.DriveId;
            q.CorruptionDetected += (_, msg, offset, size) => emit("BLOCK_IMAGE_CORRUPTED", new JsonObject
            {
                ["device"] = device,
                ["node-name"] = nodeName,
                ["msg"] = msg,
                ["offset"] = offset,
                ["size"] = size,
                ["fatal"] = true,
            });
        }
    }

    public static IReadOnlyList<BlockDeviceInfo> Drives(VirtualMachine vm)
    {
        var list = new List<BlockDeviceInfo>();
        foreach (var (_, drive) in vm.Devices.OfType<BlockDeviceInfo>()) list.Add(drive);
        return list;
    }

    public static JsonArray Query(VirtualMachine vm)
    {
        var result = new JsonArray();
        int node = 0;
        foreach (var d in Drives(vm))
        {
            var inserted = Inserted(d, NodeName(node++));
            result.Add((JsonNode)new JsonObject
            {
                ["io-status"] = "ok",
                ["device"] = d.DriveId,
                ["locked"] = false,
                ["removable"] = false,
                ["inserted"] = inserted,
                ["qdev"] = d.DeviceId,
                ["type"] = "unknown",
            });
        }
        return result;
    }

    /// <summary>QEMU's BlockDeviceInfo of a disk's top node (query-block's "inserted", an entry of query-named-block-nodes).</summary>
    public static JsonObject Inserted(BlockDeviceInfo d, string nodeName)
    {
        var top = Unwrap(d.Image);
        var inserted = new JsonObject
        {
            ["iops_rd"] = 0,
            ["detect_zeroes"] = "off",
            ["image"] = ImageInfo(top),
            ["iops_wr"] = 0,
            ["ro"] = d.ReadOnly,
            ["node-name"] = nodeName,
            ["backing_file_depth"] = Depth(top),
            ["drv"] = top.FormatName,
            ["iops"] = 0,
            ["bps_wr"] = 0,
            ["write_threshold"] = 0,
        };
        if (BackingName(top) is { } backing) inserted["backing_file"] = backing;
        inserted["encrypted"] = false;
        inserted["bps"] = 0;
        inserted["bps_rd"] = 0;
        // Writes go to the host page cache and reach the disk on the guest's flush: QEMU's default writeback.
        inserted["cache"] = new JsonObject { ["no-flush"] = false, ["direct"] = false, ["writeback"] = true };
        inserted["file"] = top.Path;
        return inserted;
    }

    /// <summary>
    /// <c>info block [-v] [device]</c>. As in QEMU, a blank line goes before every drive but the first in the list,
    /// so naming a later drive starts with one, and an unknown name prints nothing.
    /// </summary>
    public static string Info(VirtualMachine vm, string? device, bool verbose)
    {
        var sb = new StringBuilder();
        var drives = Drives(vm);
        for (int i = 0; i < drives.Count; i++)
        {
            var d = drives[i];
            if (device is not null && device != d.DriveId) continue;
            if (i > 0) sb.Append('\n');
            var top = Unwrap(d.Image);
            sb.Append(CultureInfo.InvariantCulture, $"{d.DriveId} ({NodeName(i)}): {top.Path} ({top.FormatName}{(d.ReadOnly ? ", read-only" : "")})\n");
            sb.Append(CultureInfo.InvariantCulture, $"    Attached to:      {d.DeviceId}\n");
            sb.Append("    Cache mode:       writeback\n");
            if (BackingName(top) is { } backing)
                sb.Append(CultureInfo.InvariantCulture, $"    Backing file:     {backing} (chain depth: {Depth(top)})\n");
            if (!verbose) continue;
            sb.Append("\nImages:\n");
            for (var image = ImageInfo(top); image is not null; image = image["backing-image"] as JsonObject) DumpImage(sb, image);
        }
        return sb.ToString();
    }

    private static string NodeName(int index) => $"#block{index:d3}";

    private static int Depth(IBlockImage image)
    {
        int depth = 0;
        for (var b = image.Backing; b is not null; b = b.Backing) depth++;
        return depth;
    }

    /// <summary>Disks are wrapped for migration's hand-over; QEMU's fields come from the format driver underneath.</summary>
    private static IBlockImage Unwrap(IBlockImage image) => image is SharpVmm.Machine.Migration.MigratableImage { Current: { } inner } ? inner : image;

    private static string? BackingName(IBlockImage image) => (image as Qcow2Image)?.BackingFileName ?? image.Backing?.Path;

    /// <summary>QEMU's ImageInfo: what <c>qemu-img info --output=json</c> prints, with the backing chain nested.</summary>
    private static JsonObject ImageInfo(IBlockImage image)
    {
        var q = image as Qcow2Image;
        var o = new JsonObject();
        if (image.Backing is { } backingImage) o["backing-image"] = ImageInfo(backingImage);
        if (q?.BackingFormat is { } bf) o["backing-filename-format"] = bf;
        o["virtual-size"] = image.Size;
        o["filename"] = image.Path;
        if (q is not null) o["cluster-size"] = q.ClusterSize;
        o["format"] = image.FormatName;
        o["actual-size"] = image.ActualSize;
        if (q is not null)
        {
            var data = new JsonObject { ["compat"] = q.Version == 2 ? "0.10" : "1.1" };
            if (q.Version >= 3)
            {
                data["compression-type"] = q.CompressionType;
                data["lazy-refcounts"] = q.LazyRefcounts;
            }
            data["refcount-bits"] = q.RefcountBits;
            data["corrupt"] = q.IsCorrupt;
            if (q.Version >= 3) data["extended-l2"] = q.ExtendedL2;
            o["format-specific"] = new JsonObject { ["type"] = "qcow2", ["data"] = data };
            if (q.BackingFileName is { } name)
            {
                o["full-backing-filename"] = image.Backing?.Path ?? name;
                o["backing-filename"] = name;
            }
        }
        o["dirty-flag"] = q?.IsDirty ?? false;
        return o;
    }

    /// <summary>One image of <c>info block -v</c>: QEMU's bdrv_image_info_dump, which prints the ImageInfo object.</summary>
    private static void DumpImage(StringBuilder sb, JsonObject info)
    {
        long size = (long)info["virtual-size"]!;
        sb.Append(CultureInfo.InvariantCulture, $"image: {(string?)info["filename"]}\n");
        sb.Append(CultureInfo.InvariantCulture, $"file format: {(string?)info["format"]}\n");
        sb.Append(CultureInfo.InvariantCulture, $"virtual size: {HumanSize(size)} ({size} bytes)\n");
        sb.Append(CultureInfo.InvariantCulture, $"disk size: {HumanSize((long)info["actual-size"]!)}\n");
        if (info["cluster-size"] is { } cluster) sb.Append(CultureInfo.InvariantCulture, $"cluster_size: {(int)cluster}\n");
        if (info["dirty-flag"] is { } dirty && (bool)dirty) sb.Append("cleanly shut down: no\n");
        if ((string?)info["backing-filename"] is { } name)
        {
            string full = (string?)info["full-backing-filename"] ?? name;
            sb.Append(CultureInfo.InvariantCulture, $"backing file: {name}{(full != name ? $" (actual path: {full})" : "")}\n");
            if ((string?)info["backing-filename-format"] is { } bf) sb.Append(CultureInfo.InvariantCulture, $"backing file format: {bf}\n");
        }
        if (info["format-specific"]?["data"] is not JsonObject data) return;
        // QEMU prints the format's own fields generically: the key with spaces for dashes, then the value.
        sb.Append("Format specific information:\n");
        foreach (var (key, value) in data)
        {
            string text = value is JsonValue v && v.TryGetValue(out string? str) ? str : value?.ToJsonString() ?? "null";
            sb.Append(CultureInfo.InvariantCulture, $"    {key.Replace('-', ' ')}: {text}\n");
        }
    }

    /// <summary>QEMU's size_to_str: three significant digits in the largest binary unit that keeps the number below 1000.</summary>
    public static string HumanSize(long bytes)
    {
        string[] suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        double scaled = bytes / (1000.0 / 1024.0);
        int exponent = scaled < 1 ? 0 : (int)Math.Floor(Math.Log2(scaled)) + 1;
        int i = Math.Max(0, (exponent - 1) / 10);
        double value = bytes / (double)(1L << (i * 10));
        return value.ToString("G3", CultureInfo.InvariantCulture) + " " + suffixes[i] + "B";
    }
}
