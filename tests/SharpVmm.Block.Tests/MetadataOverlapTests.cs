using System.Buffers.Binary;
using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

/// <summary>
/// Issue #16 finding 1: on an image whose refcounts or L2 entries are damaged, a guest write must never land on
/// metadata or on another guest cluster's data. Images are made by qemu-img/qemu-io and damaged here; the write is
/// refused with an I/O error, the image is marked corrupt as QEMU marks it, and the metadata is left as it was.
/// </summary>
public class MetadataOverlapTests
{
    private const int Cs = 65536;

    /// <summary>A 4 MiB qcow2 (16-bit refcounts) with guest cluster 0 written by qemu-io as 0xaa.</summary>
    private static string MakeImage(TempDir dir)
    {
        var path = dir["d.qcow2"];
        Qemu.ImgOk("create", "-q", "-f", "qcow2", path, "4M");
        Qemu.IoOk(path, "write -P 0xaa 0 64k");
        return path;
    }

    private static ulong Get64(string path, long at)
    {
        using var fs = File.OpenRead(path);
        var b = new byte[8];
        fs.Position = at;
        fs.ReadExactly(b);
        return BinaryPrimitives.ReadUInt64BigEndian(b);
    }

    private static void Put(string path, long at, ReadOnlySpan<byte> bytes)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Write);
        fs.Position = at;
        fs.Write(bytes);
    }

    private static void Put64(string path, long at, ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, v);
        Put(path, at, b);
    }

    private static long L2Of(string path) => (long)(Get64(path, (long)Get64(path, 40)) & Qcow2Image.OffsetMask);
    private static long DataOf(string path) => (long)(Get64(path, L2Of(path)) & Qcow2Image.OffsetMask);
    private static long RefBlockOf(string path) => (long)(Get64(path, (long)Get64(path, 48)) & Qcow2Image.OffsetMask);

    /// <summary>Sets a cluster's 16-bit refcount directly in the (first) refcount block.</summary>
    private static void SetRefcount(string path, long hostOffset, ushort v)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, v);
        Put(path, RefBlockOf(path) + (hostOffset / Cs) * 2, b);
    }

    private static byte[] ReadAt(string path, long at, int n)
    {
        using var fs = File.OpenRead(path);
        var b = new byte[n];
        fs.Position = at;
        fs.ReadExactly(b);
        return b;
    }

    private static bool QemuSaysCorrupt(string path) =>
        Qemu.ImgOk("info", "-U", "--output=json", path).Contains("\"corrupt\": true", StringComparison.Ordinal);

    /// <summary>Opens the damaged image, writes a fresh guest cluster and expects the refusal and the corrupt mark.</summary>
    private static void ExpectRefusedWrite(string path, long guestOffset, string expectInMessage)
    {
        //E0
        using (var img = (Qcow2Image)ImageFactory.Open(path, new ImageOpenOptions()))
        {
            //EVT
            var ex = Assert.Throws<ImageCorruptException>(() => img.Write(guestOffset, new byte[Cs]));
            Assert.Contains(expectInMessage, ex.Message, StringComparison.Ordinal);
            //NN
            Assert.True(img.IsCorrupt);
            // Fatal as in QEMU: later writes anywhere are refused too, reads still work.
            Assert.Throws<ImageCorruptException>(() => img.Write(0, new byte[512]));
            var back = new byte[Cs];
            img.Read(0, back);
            Assert.All(back, b => Assert.Equal(0xaa, b));
        }
        Assert.True(QemuSaysCorrupt(path));
        // qemu-io still reads the guest's data unharmed.
        var (code, o, e) = Qemu.Run(Qemu.Io!, "-r", "-f", "qcow2", "-c", "read -P 0xaa 0 64k", path);
        Assert.True(code == 0 && !o.Contains("Pattern verification failed", StringComparison.Ordinal), o + e);
    }

    [QemuFact]
    public void Live_L2_table_with_refcount_0_is_not_handed_out()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var l2 = L2Of(path);
        var before = ReadAt(path, l2, Cs);
        SetRefcount(path, l2, 0);
        ExpectRefusedWrite(path, 1 << 20, "active L2 table");
        Assert.Equal(before, ReadAt(path, l2, Cs));
    }

    [QemuFact]
    public void Data_cluster_with_refcount_0_is_not_handed_out_to_another_guest_cluster()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var data = DataOf(path);
        SetRefcount(path, data, 0);
        ExpectRefusedWrite(path, 1 << 20, "an L2 table points at it");
        Assert.All(ReadAt(path, data, Cs), b => Assert.Equal(0xaa, b));
    }

    [QemuFact]
    public void Refcount_block_with_refcount_0_is_not_handed_out()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var rb = RefBlockOf(path);
        SetRefcount(path, rb, 0);
        var before = ReadAt(path, rb, Cs);
        ExpectRefusedWrite(path, 1 << 20, "refcount block");
        // The refcount block was not overwritten by guest data (only our own zeroed entry stays zero).
        Assert.Equal(before, ReadAt(path, rb, Cs));
    }

    [QemuFact]
    public void L2_entry_pointing_at_a_refcount_block_cannot_overwrite_it()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var rb = RefBlockOf(path);
        var l2 = L2Of(path);
        // Guest cluster 1 now "is" the refcount block, with COPIED so the write would go in place.
        Put64(path, l2 + 8, (ulong)rb | Qcow2Image.Copied);
        var before = ReadAt(path, rb, Cs);
        ExpectRefusedWrite(path, Cs, "refcount block");
        Assert.Equal(before, ReadAt(path, rb, Cs));
    }

    [QemuFact]
    public void L2_entry_pointing_at_its_own_L2_table_cannot_overwrite_it()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var l2 = L2Of(path);
        Put64(path, l2 + 16, (ulong)l2 | Qcow2Image.Copied);
        var before = ReadAt(path, l2, Cs);
        ExpectRefusedWrite(path, 2L * Cs, "active L2 table");
        Assert.Equal(before, ReadAt(path, l2, Cs));
    }

    [QemuFact]
    public void Sound_images_are_not_flagged_when_freed_clusters_are_reused()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        Qemu.IoOk(path, "write -P 0xbb 1M 192k", "discard 1M 128k");
        using (var img = (Qcow2Image)ImageFactory.Open(path, new ImageOpenOptions()))
        {
            //EVT
            img.Write(2 << 20, Pattern.Make(2 << 20, 3 * Cs, 5));
            img.CreateSnapshot("s");
            img.Write(2 << 20, Pattern.Make(2 << 20, Cs, 6));
            img.DeleteSnapshot("s");
            img.Write(3 << 20, Pattern.Make(3 << 20, Cs, 7));
        }
        Assert.False(QemuSaysCorrupt(path));
        Qemu.CheckClean(path);
    }
}
