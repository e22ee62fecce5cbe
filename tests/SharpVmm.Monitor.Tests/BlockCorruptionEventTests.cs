using System.Buffers.Binary;
using System.Text.Json.Nodes;
using SharpVmm.Block;
using SharpVmm.Block.Qcow2;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Commands;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Tests;

/// <summary>Issue #16: a write refused because it would land on qcow2 metadata reaches QMP as BLOCK_IMAGE_CORRUPTED.</summary>
public sealed class BlockCorruptionEventTests
{
    private const ulong OffsetMask = 0x00ff_ffff_ffff_fe00UL;

    [LinuxGuestFact]
    public async Task Write_on_metadata_sends_BLOCK_IMAGE_CORRUPTED_and_the_VM_keeps_its_state()
    {
        var dir = Directory.CreateTempSubdirectory("sharpvmm-corrupt-").FullName;
        try
        {
            var disk = Path.Combine(dir, "d.qcow2");
            using (var img = ImageFactory.Create(disk, "qcow2", 8 << 20)) img.Write(0, new byte[65536]);
            // Point guest cluster 1 at the first refcount block, COPIED, so a write would go there in place.
            var f = File.ReadAllBytes(disk);
            var l1 = BinaryPrimitives.ReadInt64BigEndian(f.AsSpan(40));
            var rt = BinaryPrimitives.ReadInt64BigEndian(f.AsSpan(48));
            var l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(f.AsSpan((int)l1)) & OffsetMask);
            var rb = BinaryPrimitives.ReadUInt64BigEndian(f.AsSpan((int)rt)) & OffsetMask;
            BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan((int)l2 + 8), rb | (1UL << 63));
            File.WriteAllBytes(disk, f);

            using var vm = VmBuilder.Build(new VmConfig
            {
                Accelerator = AcceleratorKind.Emu,
                MemoryBytes = 128UL << 20,
                Kernel = GuestFiles.Kernel,
                Serial = "none",
                Disks = [new DiskSpec(disk, "qcow2")],
            });
            var socket = Path.Combine(dir, "qmp.sock");
            await using var server = QmpServer.Start(vm, socket);
            await using var client = await QmpClient.ConnectAndNegotiateAsync(socket);
            var drive = BlockCommands.Drives(vm)[0];
            Assert.Throws<ImageCorruptException>(() => drive.Image.Write(65536, new byte[4096]));

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            JsonObject e;
            do e = await client.Events.ReadAsync(cts.Token);
            while ((string?)e["event"] != "BLOCK_IMAGE_CORRUPTED");
            var data = e["data"]!.AsObject();
            Assert.Equal("virtio0", (string?)data["device"]);
            Assert.Equal("#block000", (string?)data["node-name"]);
            Assert.True((bool)data["fatal"]!);
            Assert.Equal((long)rb, (long)data["offset"]!);
            Assert.Contains("refcount block", (string?)data["msg"], StringComparison.Ordinal);
            // The monitor still answers: the VM was not stopped by the refused write.
            Assert.Equal("prelaunch", (string?)(await client.ExecuteAsync("query-status"))!["status"]);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
