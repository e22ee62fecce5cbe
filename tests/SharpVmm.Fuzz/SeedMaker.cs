using System.Text;
using Iced.Intel;
using SharpVmm.Block;
using SharpVmm.Boot.Flat;
using SharpVmm.Core;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Migration;
using SharpVmm.Machine.State;

namespace SharpVmm.Fuzz;

/// <summary>
/// <c>SharpVmm.Fuzz seeds DIR</c>: writes the seed corpus (DIR/TARGET/NAME) from the project's own writers, so the
/// seeds are well-formed files of today's formats (bench/fuzz.sh uses them; the committed copies under Corpus/ are
/// what CI replays, together with anything a campaign found and was kept).
/// </summary>
public static class SeedMaker
{
    public static void Write(string dir)
    {
        Qcow2Seeds(Directory.CreateDirectory(Path.Combine(dir, "qcow2")).FullName);
        foreach (string f in Directory.GetFiles(Path.Combine(dir, "qcow2")))
            File.Copy(f, Path.Combine(Directory.CreateDirectory(Path.Combine(dir, "img-check")).FullName, Path.GetFileName(f)), overwrite: true);
        VirtqueueSeeds(Directory.CreateDirectory(Path.Combine(dir, "virtqueue")).FullName);
        TextSeeds(Directory.CreateDirectory(Path.Combine(dir, "qmp")).FullName,
        [
            ("capabilities", """{"execute": "qmp_capabilities"}"""),
            ("status-with-id", """{"execute": "query-status", "id": 7}"""),
            ("two-in-one", """{"execute":"query-commands"}{"execute":"query-version","id":"x"}"""),
            ("arguments", """{"execute": "query-cpus-fast", "arguments": {}}"""),
            ("bad-argument", """{"execute": "query-block", "arguments": {"device": 1}}"""),
            ("schema", """{"execute": "query-qmp-schema"}"""),
            ("nested", """[[[{"a": ["\u0041", 1e3, true, null]}]]]"""),
            ("stop-not-run", """{"execute": "stop"}"""),
        ]);
        TextSeeds(Directory.CreateDirectory(Path.Combine(dir, "config")).FullName,
        [
            ("small", """{"memory": "64M", "cpus": 2, "accel": "emu"}"""),
            ("lists", """{"disk": ["a.qcow2,format=qcow2", "b.img,readonly=on"], "net": ["user"], "rng": true}"""),
            ("comments", "// a VM\n{\"kernel\": \"vmlinuz\", /* its initrd */ \"initrd\": \"initrd.gz\", \"append\": \"console=ttyS0\",}"),
            ("switch-false", """{"no-reboot": false, "paused": true, "qmp": "unix:q.sock"}"""),
        ]);
        VmSeeds(Directory.CreateDirectory(Path.Combine(dir, "snapshot")).FullName, Directory.CreateDirectory(Path.Combine(dir, "migration")).FullName);
    }

    private static void TextSeeds(string dir, (string Name, string Text)[] seeds)
    {
        foreach (var (name, text) in seeds) File.WriteAllText(Path.Combine(dir, name), text, new UTF8Encoding(false));
    }

    private static void Qcow2Seeds(string dir)
    {
        // 512-byte clusters keep the files to a few KiB, the size AFL mutates best.
        var small = new CreateOptions { ClusterSize = 512 };
        using (ImageFactory.Create(Path.Combine(dir, "empty"), "qcow2", 64 << 10, small)) { }
        using (var image = ImageFactory.Create(Path.Combine(dir, "written"), "qcow2", 64 << 10, small))
        {
            image.Write(0, Enumerable.Repeat((byte)0xA5, 1536).ToArray());
            image.Write(40 << 10, Encoding.ASCII.GetBytes("SharpVmm fuzz seed"));
            image.WriteZeroes(8 << 10, 1024, unmap: false);
            image.Flush();
        }
        // The backing file exists while the overlay is made (create opens the chain), not in the corpus.
        string backing = Path.Combine(dir, "base.img");
        using (ImageFactory.Create(backing, "raw", 64 << 10)) { }
        using (var image = ImageFactory.Create(Path.Combine(dir, "backed"), "qcow2", 64 << 10, small with { BackingFile = "base.img", BackingFormat = "raw" }))
        {
            image.Write(4096, new byte[512]);
            image.Flush();
        }
        File.Delete(backing);
    }

    /// <summary>Header (size, features, ring addresses) then RAM: a two-descriptor chain and an indirect one.</summary>
    private static void VirtqueueSeeds(string dir)
    {
        static byte[] Queue(byte sizeLog2, byte features, Action<BinaryWriter> ram)
        {
            var ms = new MemoryStream();
            var w = new BinaryWriter(ms);
            w.Write(sizeLog2); w.Write(features);
            w.Write((ushort)0x0000); w.Write((ushort)0x1000); w.Write((ushort)0x2000);
            var mem = new MemoryStream(new byte[0x3000]);
            ram(new BinaryWriter(mem));
            w.Write(mem.ToArray());
            return ms.ToArray();
        }
        static void Desc(BinaryWriter w, int index, ulong addr, uint len, ushort flags, ushort next)
        {
            w.Seek(index * 16, SeekOrigin.Begin);
            w.Write(addr); w.Write(len); w.Write(flags); w.Write(next);
        }
        static void Avail(BinaryWriter w, ushort idx, params ushort[] heads)
        {
            w.Seek(0x1000, SeekOrigin.Begin);
            w.Write((ushort)0); w.Write(idx);
            foreach (ushort h in heads) w.Write(h);
        }
        File.WriteAllBytes(Path.Combine(dir, "chain"), Queue(3, 0, w =>
        {
            Desc(w, 0, 0x2800, 16, 1 /* NEXT */, 1);
            Desc(w, 1, 0x2900, 64, 2 /* WRITE */, 0);
            Avail(w, 1, 0);
        }));
        File.WriteAllBytes(Path.Combine(dir, "indirect-event-idx"), Queue(3, 3, w =>
        {
            Desc(w, 0, 0x2400, 32, 4 /* INDIRECT */, 0);
            Desc(w, 0x2400 / 16, 0x2800, 8, 1, 1);
            Desc(w, 0x2400 / 16 + 1, 0x2900, 8, 2, 0);
            Avail(w, 2, 0, 0);
        }));
    }

    /// <summary>A snapshot file and a migration stream of a small VM that never ran (16 MiB, one page of guest code).</summary>
    private static void VmSeeds(string snapshotDir, string migrationDir)
    {
        var a = new Assembler(64);
        a.cli();
        a.hlt();
        using var code = new MemoryStream();
        a.Assemble(new StreamCodeWriter(code), 0x100000);
        string bin = Path.Combine(snapshotDir, "..", "guest.bin");
        File.WriteAllBytes(bin, code.ToArray());
        using VirtualMachine vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 16UL << 20,
            Flat = new FlatImageSpec(bin, 0x100000, EntryMode.Long),
            Serial = "none",
        });
        File.Delete(bin);
        // The header page and the state section of a real snapshot file, without the RAM between them.
        string file = Path.Combine(snapshotDir, "..", "small-vm.snap");
        VmSnapshot.Save(vm, file, "seed");
        var header = VmSnapshot.ReadHeader(file);
        using (var f = File.OpenRead(file))
        {
            var compact = new byte[SnapshotFormat.HeaderSize + header.StateLength];
            f.ReadExactly(compact.AsSpan(0, SnapshotFormat.HeaderSize));
            f.Position = header.StateOffset;
            f.ReadExactly(compact.AsSpan(SnapshotFormat.HeaderSize));
            File.WriteAllBytes(Path.Combine(snapshotDir, "small-vm"), compact);
        }
        File.Delete(file);
        using (var state = new MemoryStream())
        {
            vm.SaveMachineState(state);
            File.WriteAllBytes(Path.Combine(snapshotDir, "machine-state"), state.ToArray());
            using var stream = new MemoryStream();
            using (var w = new MigrationStreamWriter(stream, 1 << 16))
            {
                w.WriteHeader(MigrationHeader.Describe(vm));
                w.WritePages(0x100000, vm.Memory.GetReadOnlySpan(0x100000, 4096));
                w.WriteZeroPages(0, 16);
                w.WriteIterationEnd(0);
                w.WriteState(state.ToArray());
                w.WriteEnd();
                w.Flush();
            }
            File.WriteAllBytes(Path.Combine(migrationDir, "small-vm"), stream.ToArray());
        }
    }
}
