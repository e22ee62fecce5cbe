using System.Buffers.Binary;
using System.Text.Json;

namespace SharpVmm.Cli.Tests.Img;

/// <summary>
/// Issue #16 finding 3: `img check` reports what qemu-img check reports, with its exit code, and `-r` never changes
/// guest-visible data nor leaves a file worse: it repairs refcounts and flags, and refuses (writing nothing) where a
/// repair would have to drop or move data. Images are made by qemu-img and damaged here; qemu-img is the oracle.
/// </summary>
public class ImgCheckSafetyTests
{
    private const int Cs = 65536;

    private static ulong Get64(string p, long at)
    {
        using var fs = File.OpenRead(p);
        var b = new byte[8];
        fs.Position = at;
        fs.ReadExactly(b);
        return BinaryPrimitives.ReadUInt64BigEndian(b);
    }

    private static void Put64(string p, long at, ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, v);
        using var fs = new FileStream(p, FileMode.Open, FileAccess.Write);
        fs.Position = at;
        fs.Write(b);
    }

    private static long L1(string p) => (long)Get64(p, 40);
    private static long Rt(string p) => (long)Get64(p, 48);
    private static long L2(string p) => (long)(Get64(p, L1(p)) & 0x00ff_ffff_ffff_fe00UL);
    private static long RefBlock(string p) => (long)(Get64(p, Rt(p)) & 0x00ff_ffff_ffff_fe00UL);

    /// <summary>What the guest sees, as qemu-img reads it (-U: independent of our own code and locks).</summary>
    private static byte[] GuestView(Scratch d, string p)
    {
        var raw = d["view-" + Guid.NewGuid().ToString("N") + ".raw"];
        ImgHarness.Qemu("convert", "-U", "-f", "qcow2", "-O", "raw", p, raw);
        var b = File.ReadAllBytes(raw);
        File.Delete(raw);
        return b;
    }

    private static int QemuCheck(string p) => ImgHarness.Tool(ImgHarness.QemuImg!, "check", p).Code;

    /// <summary>A qcow2 with plain data at 0 and 128k and a compressed cluster at 1M, all made by qemu tools.</summary>
    private static string Make(Scratch d, string name = "a.qcow2")
    {
        var src = d["src.qcow2"];
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", src, "4M");
        ImgHarness.QemuIo(src, "write -P 0x11 0 64k", "write -P 0x22 128k 64k", "write -P 0x33 1M 64k");
        var p = d[name];
        // -c compresses every cluster; then rewrite two so the image holds plain and compressed clusters.
        ImgHarness.Qemu("convert", "-c", "-f", "qcow2", "-O", "qcow2", src, p);
        ImgHarness.QemuIo(p, "write -P 0x11 0 64k", "write -P 0x22 128k 64k");
        File.Delete(src);
        Assert.Equal(0, QemuCheck(p));
        return p;
    }

    private static int CompressedIndex => (1 << 20) / Cs;

    [QemuFact]
    public void Reserved_bits_in_L1_and_L2_entries_are_reported_as_qemu_img_does_and_not_repaired()
    {
        using var d = new Scratch();
        foreach (var which in new[] { "l1", "l2" })
        {
            var p = Make(d, which + ".qcow2");
            switch (which)
            {
                case "l1": Put64(p, L1(p), Get64(p, L1(p)) | 0x2); break;
                case "l2": Put64(p, L2(p), Get64(p, L2(p)) | 0x2); break;
            }
            Assert.Equal(2, QemuCheck(p));
            var (code, _, err) = ImgHarness.Run("check", p);
            Assert.Equal(2, code);
            Assert.Contains("reserved bits set", err, StringComparison.Ordinal);
            var before = File.ReadAllBytes(p);
            Assert.Equal(2, ImgHarness.Run("check", "-r", "all", p).Code);
            Assert.Equal(before, File.ReadAllBytes(p));
        }
    }

    [QemuFact]
    public void A_compressed_entry_with_COPIED_is_reported_and_repaired_keeping_the_data()
    {
        using var d = new Scratch();
        var p = Make(d);
        var at = L2(p) + CompressedIndex * 8L;
        var e = Get64(p, at);
        Assert.NotEqual(0UL, e & (1UL << 62));
        var view = GuestView(d, p);
        Put64(p, at, e | (1UL << 63));
        Assert.Equal(2, QemuCheck(p));
        var (code, _, err) = ImgHarness.Run("check", p);
        Assert.Equal(2, code);
        Assert.Contains("copied flag must never be set for compressed clusters", err, StringComparison.Ordinal);
        Assert.Equal(0, ImgHarness.Run("check", "-r", "all", p).Code);
        Assert.Equal(0, QemuCheck(p));
        Assert.Equal(view, GuestView(d, p));
    }

    [QemuFact]
    public void Reserved_bits_in_a_refcount_table_entry_are_reported_and_repaired_by_a_rebuild_keeping_the_data()
    {
        using var d = new Scratch();
        var p = Make(d);
        var view = GuestView(d, p);
        Put64(p, Rt(p), Get64(p, Rt(p)) | 0x4);
        Assert.Equal(2, QemuCheck(p));
        var (code, _, err) = ImgHarness.Run("check", p);
        Assert.Equal(2, code);
        Assert.Contains("reserved bits set", err, StringComparison.Ordinal);
        // Leaks mode may not replace refcount structures (as qemu-img: exit 1, nothing written); all mode rebuilds them.
        var before = File.ReadAllBytes(p);
        Assert.Equal(1, ImgHarness.Run("check", "-r", "leaks", p).Code);
        Assert.Equal(before, File.ReadAllBytes(p));
        (code, _, err) = ImgHarness.Run("check", "-r", "all", p);
        Assert.True(code == 0, err);
        Assert.Contains("Rebuilding refcount structure", err, StringComparison.Ordinal);
        Assert.Equal(0, QemuCheck(p));
        Assert.Equal(view, GuestView(d, p));
    }

    [QemuFact]
    public void A_refcount_block_used_as_data_is_repaired_by_a_rebuild_that_leaves_the_data_as_the_guest_reads_it()
    {
        using var d = new Scratch();
        var p = Make(d);
        // Guest cluster 3 (unallocated) now claims the refcount block as its data.
        Put64(p, L2(p) + 3 * 8, (ulong)RefBlock(p) | (1UL << 63));
        Assert.Equal(2, QemuCheck(p));
        Assert.Equal(2, ImgHarness.Run("check", p).Code);
        var view = GuestView(d, p);
        var theirs = d["theirs.qcow2"];
        File.Copy(p, theirs);
        Assert.Equal(0, ImgHarness.Tool(ImgHarness.QemuImg!, "check", "-r", "all", theirs).Code);
        // New refcount structures elsewhere: the old block's cluster stays, as the guest's data, byte for byte.
        var (code, _, err) = ImgHarness.Run("check", "-r", "all", p);
        Assert.True(code == 0, err);
        Assert.Equal(0, QemuCheck(p));
        Assert.Equal(view, GuestView(d, p));
        Assert.Equal(view, GuestView(d, theirs));
    }

    [QemuFact]
    public void An_L2_table_also_used_as_data_is_refused_without_writing()
    {
        using var d = new Scratch();
        var p = Make(d);
        // Guest cluster 3 claims the L2 table as its data: no repair can separate the two without changing one.
        Put64(p, L2(p) + 3 * 8, (ulong)L2(p) | (1UL << 63));
        Assert.Equal(2, QemuCheck(p));
        var before = File.ReadAllBytes(p);
        var (code, _, err) = ImgHarness.Run("check", "-r", "all", p);
        Assert.Equal(2, code);
        Assert.Contains("not repaired", err, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(p));
    }

    [QemuFact]
    public void A_data_pointer_past_the_end_of_the_file_is_not_dropped_by_repair()
    {
        using var d = new Scratch();
        var p = Make(d);
        Put64(p, L2(p) + 3 * 8, (ulong)(new FileInfo(p).Length + 16L * Cs) | (1UL << 63));
        Assert.Equal(2, ImgHarness.Run("check", p).Code);
        var before = File.ReadAllBytes(p);
        // The old repair zeroed the entry: the guest's cluster 3 would then read differently. Now nothing is written.
        Assert.Equal(2, ImgHarness.Run("check", "-r", "all", p).Code);
        Assert.Equal(before, File.ReadAllBytes(p));
        Assert.Equal(2, ImgHarness.Run("check", "-r", "leaks", p).Code);
        Assert.Equal(before, File.ReadAllBytes(p));
    }

    [QemuFact]
    public void A_compressed_cluster_overrunning_the_file_is_a_corruption_as_for_qemu_img()
    {
        using var d = new Scratch();
        var p = Make(d);
        var at = L2(p) + CompressedIndex * 8L;
        var e = Get64(p, at);
        // Claim the maximum sector count: the compressed bytes now run past the end of the file.
        var x = 62 - (16 - 8);
        var big = (e & ~(((1UL << 8) - 1) << x)) | (((1UL << 8) - 1) << x);
        var off = (long)(e & ((1UL << x) - 1));
        Put64(p, at, big);
        using (var fs = new FileStream(p, FileMode.Open)) fs.SetLength(Math.Max(off + 4096, (off & ~(Cs - 1L)) + Cs));
        Assert.Equal(2, QemuCheck(p));
        Assert.Equal(2, ImgHarness.Run("check", p).Code);
    }

    [QemuFact]
    public void A_live_L2_table_with_refcount_0_is_repaired_as_qemu_img_repairs_it()
    {
        using var d = new Scratch();
        var p = Make(d);
        var view = GuestView(d, p);
        var rb = RefBlock(p);
        using (var fs = new FileStream(p, FileMode.Open, FileAccess.Write))
        {
            fs.Position = rb + L2(p) / Cs * 2;
            fs.Write([0, 0]);
        }
        Assert.Equal(2, QemuCheck(p));
        Assert.Equal(2, ImgHarness.Run("check", p).Code);
        Assert.Equal(0, ImgHarness.Run("check", "-r", "all", p).Code);
        Assert.Equal(0, QemuCheck(p));
        Assert.Equal(view, GuestView(d, p));
        var info = JsonDocument.Parse(ImgHarness.Qemu("info", "--output=json", p)).RootElement;
        Assert.False(info.GetProperty("format-specific").GetProperty("data").GetProperty("corrupt").GetBoolean());
    }
}
