using System.Buffers.Binary;
using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

/// <summary>
/// A corpus of damaged images, generated here: each must give a clear <see cref="BlockImageException"/>, never a crash,
/// a hang or a write outside the image's own clusters.
/// </summary>
public class MalformedImageTests
{
    internal const int Cs = 65536;

    /// <summary>A valid 4 MiB image with data, a snapshot and more data; returns its bytes.</summary>
    internal static byte[] MakeValid(string path, bool snapshot = true)
    {
        using (var img = (Qcow2Image)ImageFactory.Create(path, "qcow2", 4 << 20))
        {
            img.Write(0, Pattern.Make(0, 200000, 1));
            if (snapshot) img.CreateSnapshot("s");
            img.Write(3 << 20, Pattern.Make(3 << 20, 70000, 2));
            var c = new byte[Cs];
            Pattern.Fill(c, 1 << 20, 3);
            c.AsSpan(0, 30000).Clear();
            img.WriteCompressed(1 << 20, c);
        }
        return File.ReadAllBytes(path);
    }

    internal static long L1Offset(byte[] f) => BinaryPrimitives.ReadInt64BigEndian(f.AsSpan(40));
    internal static long RtOffset(byte[] f) => BinaryPrimitives.ReadInt64BigEndian(f.AsSpan(48));
    internal static long L2Offset(byte[] f) => (long)(BinaryPrimitives.ReadUInt64BigEndian(f.AsSpan((int)L1Offset(f))) & Qcow2Image.OffsetMask);

    public static TheoryData<string> Cases() =>
    [
        "truncated header", "bad magic version", "cluster bits 30", "huge l1_size", "l1 too small for size",
        "l1 table unaligned", "l1 table past eof", "refcount table past eof", "refcount table huge",
        "refcount order 7", "header length odd", "unknown incompatible bit", "encrypted", "external data file",
        "backing name outside header", "snapshot table overrun", "snapshot count huge", "snapshot l1 past eof",
        "l2 offset inside header", "l2 offset unaligned", "l2 offset past eof", "l2 offset on refcount table",
        "data cluster inside header", "data cluster on l1 table", "data cluster past eof",
        "compressed descriptor past eof", "compressed garbage", "refcount block inside header",
        "refcount block unaligned", "extension overruns header", "missing backing file",
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Damaged_image_gives_a_clear_error_and_no_stray_write(string name)
    {
        using var dir = new TempDir();
        var path = dir["bad.qcow2"];
        var f = MakeValid(path);
        var l2 = L2Offset(f);
        void Put64(long at, ulong v) => BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan((int)at), v);
        void Put32(long at, uint v) => BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan((int)at), v);
        switch (name)
        {
            case "truncated header": f = f[..50]; break;
            case "bad magic version": Put32(4, 4); break;
            case "cluster bits 30": Put32(20, 30); break;
            case "huge l1_size": Put32(36, 0x7fffffff); break;
            case "l1 too small for size": Put64(24, 1L << 40); break;
            case "l1 table unaligned": Put64(40, (ulong)L1Offset(f) + 8); break;
            case "l1 table past eof": Put64(40, 1UL << 40); break;
            case "refcount table past eof": Put64(48, (ulong)f.Length + Cs); break;
            case "refcount table huge": Put32(56, 0x10000000); break;
            case "refcount order 7": Put32(96, 7); break;
            case "header length odd": Put32(100, 105); break;
            case "unknown incompatible bit": Put64(72, 1UL << 40); break;
            case "encrypted": Put32(32, 1); break;
            case "external data file": Put64(72, 4); break;
            case "backing name outside header": Put64(8, Cs - 4); Put32(16, 100); break;
            case "snapshot table overrun": Put32(60, 1000); break;
            case "snapshot count huge": Put32(60, 0x7fffffff); break;
            case "snapshot l1 past eof": Put64(BinaryPrimitives.ReadInt64BigEndian(f.AsSpan(64)), 1UL << 40); break;
            case "l2 offset inside header": Put64(L1Offset(f), 0x200 | Qcow2Image.Copied); break;
            case "l2 offset unaligned": Put64(L1Offset(f), (ulong)(l2 + 512) | Qcow2Image.Copied); break;
            case "l2 offset past eof": Put64(L1Offset(f), (1UL << 45) | Qcow2Image.Copied); break;
            case "l2 offset on refcount table": Put64(L1Offset(f), (ulong)RtOffset(f) | Qcow2Image.Copied); break;
            case "data cluster inside header": Put64(l2, 0x10000UL >> 16 << 9 | Qcow2Image.Copied); break;
            case "data cluster on l1 table": Put64(l2, (ulong)L1Offset(f) | Qcow2Image.Copied); break;
            case "data cluster past eof": Put64(l2, (1UL << 44) | Qcow2Image.Copied); break;
            case "compressed descriptor past eof": Put64(l2 + 16 * 8, Qcow2Image.CompressedFlag | (1UL << 40)); break;
            case "compressed garbage": Put64(l2 + 16 * 8, Qcow2Image.CompressedFlag | (ulong)(l2 + 100)); break;
            case "refcount block inside header": Put64(RtOffset(f), 0x400); break;
            case "refcount block unaligned": Put64(RtOffset(f), (ulong)Cs * 2 + 512); break;
            case "extension overruns header": Put32(112, 0x12345678); Put32(116, 0x7fff0000); break;
            case "missing backing file": Put64(72, 0); f = WithBacking(f, "does-not-exist.qcow2"); break;
        }
        File.WriteAllBytes(path, f);
        var before = File.ReadAllBytes(path);
        var errors = 0;
        Bounded.Run(() =>
        {
            foreach (var ro in new[] { true, false })
            {
                try
                {
                    using var img = ImageFactory.Open(path, new ImageOpenOptions { ReadOnly = ro, Format = "qcow2" });
                    Exercise(img, ro);
                }
                catch (BlockImageException e)
                {
                    Assert.False(string.IsNullOrWhiteSpace(e.Message));
                    Assert.Contains("bad.qcow2", e.Message, StringComparison.Ordinal);
                    errors++;
                }
                if (ro) Assert.Equal(before, File.ReadAllBytes(path));
            }
        }, TimeSpan.FromSeconds(30), name);
        Assert.True(errors > 0, $"{name}: damage went unnoticed");
        // Nothing may land past what the image owned plus what a fresh allocation could add.
        Assert.True(new FileInfo(path).Length <= before.Length + 4L * Cs, $"{name}: the file grew to {new FileInfo(path).Length}");
        try
        {
            ImageCheck.Run(path, CheckRepair.None);
        }
        catch (BlockImageException) { }
    }

    /// <summary>Reads everything, maps everything, writes a few clusters: any of it may fail, but only cleanly.</summary>
    internal static void Exercise(IBlockImage img, bool readOnly)
    {
        var buf = new byte[256 << 10];
        for (long off = 0; off < Math.Min(img.Size, 16 << 20); off += buf.Length)
            img.Read(off, buf.AsSpan(0, (int)Math.Min(buf.Length, img.Size - off)));
        for (long off = 0; off < Math.Min(img.Size, 16 << 20);)
            off += img.GetStatus(off, Math.Min(img.Size, 16 << 20) - off).Length;
        if (readOnly || img.Size < 4 << 20) return;
        img.Write(0, new byte[4096]);
        img.Write(1 << 20, new byte[70000]);
        img.Write(3 << 20, new byte[100]);
        img.WriteZeroes(2 << 20, 65536, true);
        img.Flush();
    }

    private static byte[] WithBacking(byte[] f, string name)
    {
        var b = System.Text.Encoding.ASCII.GetBytes(name);
        const int at = 4096;
        b.CopyTo(f, at);
        BinaryPrimitives.WriteInt64BigEndian(f.AsSpan(8), at);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(16), b.Length);
        return f;
    }

    [Fact]
    public void Cyclic_backing_chains_are_refused()
    {
        using var dir = new TempDir();
        using (ImageFactory.Create(dir["a.qcow2"], "qcow2", 1 << 20)) { }
        using (ImageFactory.Create(dir["b.qcow2"], "qcow2", 1 << 20, new CreateOptions { BackingFile = "a.qcow2", BackingFormat = "qcow2" })) { }
        using (var a = ImageFactory.OpenQcow2(dir["a.qcow2"], new ImageOpenOptions { OpenBacking = false })) a.SetBackingFile("b.qcow2", "qcow2");
        var e = Assert.Throws<BlockImageException>(() => ImageFactory.Open(dir["b.qcow2"]));
        Assert.Contains("loops", e.Message, StringComparison.Ordinal);
        using (var a = ImageFactory.OpenQcow2(dir["a.qcow2"], new ImageOpenOptions { OpenBacking = false })) a.SetBackingFile("a.qcow2", "qcow2");
        Assert.Throws<BlockImageException>(() => ImageFactory.Open(dir["a.qcow2"]));
    }

    [Fact]
    public void Unknown_incompatible_feature_is_named_from_the_feature_table()
    {
        using var dir = new TempDir();
        var f = MakeValid(dir["a.qcow2"], snapshot: false);
        // Our feature table names bit 4 "extended L2 entries"; pretend bit 4 of the compatible set is unknown by
        // setting an unknown incompatible bit (bit 9) and check the message lists it.
        BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan(72), 1UL << 9);
        File.WriteAllBytes(dir["a.qcow2"], f);
        var e = Assert.Throws<BlockImageException>(() => ImageFactory.Open(dir["a.qcow2"]));
        Assert.Contains("bit 9", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Autoclear_bits_are_cleared_on_read_write_open_and_kept_read_only()
    {
        using var dir = new TempDir();
        var f = MakeValid(dir["a.qcow2"], snapshot: false);
        BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan(88), 1);
        File.WriteAllBytes(dir["a.qcow2"], f);
        using (ImageFactory.Open(dir["a.qcow2"], new ImageOpenOptions { ReadOnly = true })) { }
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64BigEndian(File.ReadAllBytes(dir["a.qcow2"]).AsSpan(88)));
        using (ImageFactory.Open(dir["a.qcow2"])) { }
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64BigEndian(File.ReadAllBytes(dir["a.qcow2"]).AsSpan(88)));
    }
}
