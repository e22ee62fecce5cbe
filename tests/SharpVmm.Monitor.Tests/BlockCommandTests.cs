using System.Text.Json.Nodes;
using SharpVmm.Block;
using SharpVmm.Boot.Initramfs;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Commands;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Tests;

/// <summary>query-block and <c>info block</c> on a VM built with disks (not started: prelaunch is enough to inspect them).</summary>
public sealed class BlockCommandTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-block-").FullName;
    private VirtualMachine? _vm;
    private QmpServer? _server;
    private QmpClient? _client;

    private string Socket => Path.Combine(_dir, "qmp.sock");
    private string Top => Path.Combine(_dir, "top.qcow2");
    private string Base => Path.Combine(_dir, "base.qcow2");
    private string Raw => Path.Combine(_dir, "data.raw");

    public async Task InitializeAsync()
    {
        if (!HostFeatures.Has(Need.LinuxGuest)) return;
        using (var b = ImageFactory.Create(Base, "qcow2", 64 << 20)) b.Write(0, new byte[4096]);
        ImageFactory.Create(Top, "qcow2", 64 << 20, new CreateOptions { BackingFile = "base.qcow2", BackingFormat = "qcow2" }).Dispose();
        ImageFactory.Create(Raw, "raw", 8 << 20).Dispose();
        _vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 128UL << 20,
            Kernel = GuestFiles.Kernel,
            Serial = "none",
            Disks = [new DiskSpec(Top, "qcow2"), new DiskSpec(Raw, "raw", ReadOnly: true)],
        });
        _server = QmpServer.Start(_vm, Socket);
        _client = await QmpClient.ConnectAndNegotiateAsync(Socket);
    }

    public async Task DisposeAsync()
    {
        if (_client is not null) await _client.DisposeAsync();
        if (_server is not null) await _server.DisposeAsync();
        _vm?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<string> Hmp(string line)
        => (await _client!.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = line }))!.GetValue<string>();

    [LinuxGuestFact]
    public async Task Query_blockstats_gives_each_disk_its_devices_counters_and_each_node_its_own()
    {
        var drive = BlockCommands.Drives(_vm!)[0];
        drive.Stats.Done(BlockRequestKind.Write, 4096, System.Diagnostics.Stopwatch.GetTimestamp(), endOffset: 1 << 20);
        var list = (JsonArray)(await _client!.ExecuteAsync("query-blockstats"))!;
        Assert.Equal(2, list.Count);
        var top = list[0]!.AsObject();
        Assert.Equal("virtio0", (string?)top["device"]);
        Assert.Equal("virtio-blk0", (string?)top["qdev"]);
        Assert.Equal("#block000", (string?)top["node-name"]);
        var stats = top["stats"]!.AsObject();
        Assert.Equal(1, (long)stats["wr_operations"]!);
        Assert.Equal(4096, (long)stats["wr_bytes"]!);
        Assert.Equal(0, (long)stats["rd_operations"]!);
        Assert.Equal(1 << 20, (long)stats["wr_highest_offset"]!);
        Assert.NotNull(stats["idle_time_ns"]);
        Assert.Null(list[1]!["stats"]!["idle_time_ns"]); // the other disk has done nothing yet

        var nodes = (JsonArray)(await _client!.ExecuteAsync("query-blockstats", new JsonObject { ["query-nodes"] = true }))!;
        Assert.Equal("", (string?)nodes[0]!["device"]);
        Assert.Equal("#block000", (string?)nodes[0]!["node-name"]);
        Assert.Equal(0, (long)nodes[0]!["stats"]!["wr_operations"]!); // QEMU counts at the device, not the node
        Assert.Equal(1 << 20, (long)nodes[0]!["stats"]!["wr_highest_offset"]!);
    }

    [LinuxGuestFact]
    public async Task Query_block_describes_each_disk_as_QEMU_does_for_if_virtio_drives()
    {
        var list = (JsonArray)(await _client!.ExecuteAsync("query-block"))!;
        Assert.Equal(2, list.Count);

        var top = list[0]!.AsObject();
        Assert.Equal("virtio0", (string?)top["device"]);
        Assert.Equal("virtio-blk0", (string?)top["qdev"]);
        Assert.Equal("ok", (string?)top["io-status"]);
        Assert.Equal("unknown", (string?)top["type"]);
        Assert.False((bool)top["locked"]!);
        Assert.False((bool)top["removable"]!);
        var ins = top["inserted"]!.AsObject();
        Assert.Equal(Top, (string?)ins["file"]);
        Assert.Equal("qcow2", (string?)ins["drv"]);
        Assert.False((bool)ins["ro"]!);
        Assert.False((bool)ins["encrypted"]!);
        Assert.Equal(1, (int)ins["backing_file_depth"]!);
        Assert.Equal("base.qcow2", (string?)ins["backing_file"]);
        Assert.True((bool)ins["cache"]!["writeback"]!);
        var image = ins["image"]!.AsObject();
        Assert.Equal(Top, (string?)image["filename"]);
        Assert.Equal("qcow2", (string?)image["format"]);
        Assert.Equal(64L << 20, (long)image["virtual-size"]!);
        Assert.True((long)image["actual-size"]! > 0);
        Assert.Equal(65536, (int)image["cluster-size"]!);
        Assert.Equal("base.qcow2", (string?)image["backing-filename"]);
        Assert.Equal("qcow2", (string?)image["backing-filename-format"]);
        Assert.Equal(Base, (string?)image["full-backing-filename"]);
        Assert.False((bool)image["dirty-flag"]!);
        Assert.Equal("1.1", (string?)image["format-specific"]!["data"]!["compat"]);
        Assert.Equal(Base, (string?)image["backing-image"]!["filename"]);
        Assert.Null(image["backing-image"]!["backing-image"]);

        var raw = list[1]!.AsObject();
        Assert.Equal("virtio1", (string?)raw["device"]);
        Assert.Equal("virtio-blk1", (string?)raw["qdev"]);
        Assert.True((bool)raw["inserted"]!["ro"]!);
        Assert.Equal("raw", (string?)raw["inserted"]!["drv"]);
        Assert.Equal(0, (int)raw["inserted"]!["backing_file_depth"]!);
        Assert.Null(raw["inserted"]!["backing_file"]);
        Assert.Equal(8L << 20, (long)raw["inserted"]!["image"]!["virtual-size"]!);
        Assert.Null(raw["inserted"]!["image"]!["format-specific"]);

        // The records the builder registered are what the command read.
        Assert.Equal(["virtio-blk0.drive", "virtio-blk1.drive"], _vm!.Devices.OfType<BlockDeviceInfo>().Select(d => d.Id));
    }

    [LinuxGuestFact]
    public async Task Info_block_prints_QEMUs_text_for_all_one_or_no_drives()
    {
        Assert.Equal(
            $"virtio0 (#block000): {Top} (qcow2)\r\n"
            + "    Attached to:      virtio-blk0\r\n"
            + "    Cache mode:       writeback\r\n"
            + "    Backing file:     base.qcow2 (chain depth: 1)\r\n"
            + "\r\n"
            + $"virtio1 (#block001): {Raw} (raw, read-only)\r\n"
            + "    Attached to:      virtio-blk1\r\n"
            + "    Cache mode:       writeback\r\n",
            await Hmp("info block"));
        // QEMU's blank line before every drive but the list's first, even when it is the only one shown.
        Assert.StartsWith($"\r\nvirtio1 (#block001): {Raw} (raw, read-only)\r\n", await Hmp("info block virtio1"));
        Assert.Equal("", await Hmp("info block nosuch"));
        string verbose = await Hmp("info block -v virtio0");
        Assert.Contains($"\r\nImages:\r\nimage: {Top}\r\nfile format: qcow2\r\nvirtual size: 64 MiB (67108864 bytes)\r\n", verbose);
        Assert.Contains($"backing file: base.qcow2 (actual path: {Base})\r\nbacking file format: qcow2\r\n", verbose);
        Assert.Contains($"image: {Base}\r\n", verbose);
        Assert.Contains("Format specific information:\r\n    compat: 1.1\r\n    compression type: zlib\r\n    lazy refcounts: false\r\n"
            + "    refcount bits: 16\r\n    corrupt: false\r\n    extended l2: false\r\n", verbose);
        Assert.Equal("block: unsupported option -x\r\nTry \"help info block\" for more information\r\n", await Hmp("info block -x"));
        Assert.Equal("block: extraneous characters at the end of line\r\nTry \"help info block\" for more information\r\n", await Hmp("info block virtio0 virtio1"));
    }
}

public sealed class HumanSizeTests
{
    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(512, "512 B")]
    [InlineData(1000, "0.977 KiB")]
    [InlineData(200704, "196 KiB")]
    [InlineData(64L << 20, "64 MiB")]
    [InlineData(1536L << 20, "1.5 GiB")]
    public void Sizes_read_as_QEMUs_size_to_str(long bytes, string text) => Assert.Equal(text, BlockCommands.HumanSize(bytes));
}
