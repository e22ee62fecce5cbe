using System.Buffers.Binary;
using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

/// <summary>
/// Issue #16, safe repair: refcount structures broken beyond fixing single refcounts (a refcount table entry that is
/// missing, misaligned or has reserved bits, a refcount block on an L2 table, the L1 table or guest data, or beyond
/// the end of the file) are rebuilt by check -r all, as qemu-img rebuilds them. The images are made by qemu-img and
/// qemu-io (with an internal snapshot, so some clusters are shared) and damaged here; qemu-img repairs one copy, we
/// repair another, and both must then pass qemu-img check and read exactly what the guest read before, in the active
/// layer and in the snapshot.
/// </summary>
public class RefcountRebuildTests
{
    private const int Cs = 65536;

    private static ulong Get64(string path, long at)
    {
        using var fs = File.OpenRead(path);
        var b = new byte[8];
        fs.Position = at;
        fs.ReadExactly(b);
        return BinaryPrimitives.ReadUInt64BigEndian(b);
    }

    private static void Put64(string path, long at, ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, v);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Write);
        fs.Position = at;
        fs.Write(b);
    }

    private static long L1(string p) => (long)Get64(p, 40);
    private static long Rt(string p) => (long)Get64(p, 48);
    private static long L2(string p) => (long)(Get64(p, L1(p)) & Qcow2Image.OffsetMask);
    private static long Data(string p) => (long)(Get64(p, L2(p)) & Qcow2Image.OffsetMask);

    /// <summary>Guest data in three clusters, a snapshot of it, then one cluster rewritten (so it is no longer shared).</summary>
    private static string Make(TempDir d)
    {
        var p = d["base.qcow2"];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", p, "4M");
        Qemu.IoOk(p, "write -P 0x11 0 64k", "write -P 0x22 128k 64k", "write -P 0x33 1M 64k");
        Qemu.ImgOk("snapshot", "-c", "s1", p);
        Qemu.IoOk(p, "write -P 0x44 0 64k", "write -P 0x55 2M 4k");
        Qemu.CheckClean(p);
        return p;
    }

    /// <summary>What the guest reads, as qemu-img reads it: the active layer, or a snapshot's.</summary>
    private static byte[] View(TempDir d, string p, string? snapshot = null)
    {
        var raw = d[$"view-{Guid.NewGuid():N}.raw"];
        if (snapshot is null) Qemu.ImgOk("convert", "-U", "-f", "qcow2", "-O", "raw", p, raw);
        else Qemu.ImgOk("convert", "-U", "-f", "qcow2", "-O", "raw", "-l", "snapshot.name=" + snapshot, p, raw);
        var b = File.ReadAllBytes(raw);
        File.Delete(raw);
        return b;
    }

    private static void Damage(string p, string how)
    {
        var end = new FileInfo(p).Length;
        var entry = how switch
        {
            "missing" => 0UL,
            "on-l2" => (ulong)L2(p),
            "on-l1" => (ulong)L1(p),
            "on-data" => (ulong)Data(p),
            "beyond-eof" => (ulong)((end + 16L * Cs) & ~(Cs - 1L)),
            "misaligned" => Get64(p, Rt(p)) + 0x200,
            "reserved-bits" => Get64(p, Rt(p)) | 0x4,
            _ => throw new ArgumentException(how),
        };
        Put64(p, Rt(p), entry);
    }

    [QemuTheory]
    [InlineData("missing")]
    [InlineData("on-l2")]
    [InlineData("on-l1")]
    [InlineData("on-data")]
    [InlineData("beyond-eof")]
    public void A_broken_refcount_structure_qemu_img_repairs_is_rebuilt_by_ours_too_keeping_the_data(string how)
    {
        using var d = new TempDir();
        var p = Make(d);
        var active = View(d, p);
        var snap = View(d, p, "s1");
        Damage(p, how);
        Assert.NotEqual(0, Qemu.Run(Qemu.Img!, "check", p).Code);

        var theirs = d["theirs.qcow2"];
        File.Copy(p, theirs);
        var (code, o, e) = Qemu.Run(Qemu.Img!, "check", "-r", "all", theirs);
        Assert.True(code == 0, $"qemu-img check -r all: exit {code}\n{o}{e}");

        var ours = d["ours.qcow2"];
        File.Copy(p, ours);
        Assert.NotEqual(0, ImageCheck.Run(ours, CheckRepair.None).Corruptions);
        var r = ImageCheck.Run(ours, CheckRepair.All);
        Assert.True(r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0, string.Join('\n', r.Messages));
        // A missing block is simply recreated (its range's refcounts are all that is lost); the others need new structures.
        if (how != "missing") Assert.Contains("Rebuilding refcount structure", r.Messages);

        foreach (var image in new[] { theirs, ours })
        {
            Qemu.CheckClean(image);
            Assert.Equal(active, View(d, image));
            Assert.Equal(snap, View(d, image, "s1"));
        }
        // And ours reads it as clean as qemu-img does, and writes to it keep the refcounts right.
        Assert.Equal(0, ImageCheck.Run(ours, CheckRepair.None).Corruptions);
        Qemu.IoOk(ours, "write -P 0x66 3M 64k", "read -P 0x66 3M 64k");
        Qemu.CheckClean(ours);
    }

    [QemuTheory]
    [InlineData("misaligned")]
    [InlineData("reserved-bits")]
    public void A_refcount_table_entry_qemu_img_cannot_repair_is_rebuilt_by_ours_keeping_the_data(string how)
    {
        using var d = new TempDir();
        var p = Make(d);
        var active = View(d, p);
        var snap = View(d, p, "s1");
        Damage(p, how);
        Assert.NotEqual(0, Qemu.Run(Qemu.Img!, "check", p).Code);
        var r = ImageCheck.Run(p, CheckRepair.All);
        Assert.True(r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0, string.Join('\n', r.Messages));
        Qemu.CheckClean(p);
        Assert.Equal(active, View(d, p));
        Assert.Equal(snap, View(d, p, "s1"));
    }

    [QemuFact]
    public void Random_damage_to_the_refcount_structures_is_repaired_keeping_the_data_or_refused_writing_nothing()
    {
        using var d = new TempDir();
        var p = Make(d);
        var active = View(d, p);
        var snap = View(d, p, "s1");
        var pristine = File.ReadAllBytes(p);
        var clusters = pristine.Length / Cs;
        var rng = new Random(16);
        int repaired = 0;
        for (var round = 0; round < 24; round++)
        {
            var img = d[$"r{round}.qcow2"];
            File.WriteAllBytes(img, pristine);
            // Refcount table entries pointing anywhere (any cluster, past the end, misaligned, reserved bits), and
            // refcount block entries overwritten with random values.
            for (var n = rng.Next(1, 3); n > 0; n--)
            {
                var target = rng.Next(4) switch
                {
                    0 => (ulong)rng.Next(0, clusters + 8) * Cs,
                    1 => (ulong)rng.Next(1, clusters) * Cs + (uint)rng.Next(1, 512),
                    2 => Get64(img, Rt(img)) | (uint)rng.Next(1, 512),
                    _ => 0UL,
                };
                Put64(img, Rt(img) + rng.Next(0, 2) * 8, target);
            }
            if (rng.Next(2) == 0)
            {
                var block = (long)(Get64(p, Rt(p)) & Qcow2Image.OffsetMask);
                Put64(img, block + rng.Next(0, 16) * 8, (ulong)rng.NextInt64());
            }
            var before = File.ReadAllBytes(img);
            CheckResult r;
            try { r = ImageCheck.Run(img, CheckRepair.All); }
            catch (BlockImageException) { Assert.Equal(before, File.ReadAllBytes(img)); continue; }
            if (r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0)
            {
                repaired++;
                Qemu.CheckClean(img);
                Assert.Equal(active, View(d, img));
                Assert.Equal(snap, View(d, img, "s1"));
            }
            else
            {
                Assert.Equal(before, File.ReadAllBytes(img));
            }
            File.Delete(img);
        }
        Assert.True(repaired >= 20, $"only {repaired} of 24 damaged images were repaired");
    }

    [QemuFact]
    public void Leaks_mode_does_not_rebuild_and_writes_nothing()
    {
        using var d = new TempDir();
        var p = Make(d);
        Damage(p, "on-l2");
        var before = File.ReadAllBytes(p);
        var r = ImageCheck.Run(p, CheckRepair.Leaks);
        Assert.Equal(1, r.CheckErrors);
        Assert.Contains(r.Messages, m => m.Contains("need to rebuild refcount structures", StringComparison.Ordinal));
        Assert.Equal(before, File.ReadAllBytes(p));
    }
}
