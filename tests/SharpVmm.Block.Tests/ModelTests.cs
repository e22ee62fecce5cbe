using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

/// <summary>Random writes against an in-memory model across cluster sizes, refcount widths and both versions.</summary>
public class ModelTests
{
    public static TheoryData<int, int, string> Configs()
    {
        var d = new TheoryData<int, int, string>();
        foreach (var rb in new[] { 1, 2, 4, 8, 16, 32, 64 }) d.Add(512, rb, "1.1");
        foreach (var rb in new[] { 1, 16, 64 }) d.Add(4096, rb, "1.1");
        d.Add(65536, 16, "1.1");
        d.Add(65536, 16, "0.10");
        d.Add(2 << 20, 16, "1.1");
        d.Add(2 << 20, 1, "1.1");
        return d;
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void Random_writes_read_back_after_reopen_and_check_clean(int clusterSize, int refcountBits, string compat)
    {
        using var dir = new TempDir();
        var path = dir["a.qcow2"];
        const long size = 24 << 20;
        var model = new byte[size];
        var rng = new Random(clusterSize ^ refcountBits);
        using (var img = ImageFactory.Create(path, "qcow2", size, new CreateOptions { ClusterSize = clusterSize, RefcountBits = refcountBits, Compat = compat }))
        {
            for (var i = 0; i < 200; i++)
            {
                var off = rng.NextInt64(size - 1);
                var len = (int)Math.Min(size - off, rng.Next(1, i % 10 == 0 ? 3 << 20 : 70000));
                var data = Pattern.Make(off, len, i);
                img.Write(off, data);
                data.CopyTo(model.AsSpan((int)off));
                if (i % 37 == 0)
                {
                    var zo = rng.NextInt64(size / clusterSize) * clusterSize;
                    var zl = Math.Min(size - zo, clusterSize * rng.Next(1, 8));
                    img.WriteZeroes(zo, zl, unmap: i % 2 == 0);
                    model.AsSpan((int)zo, (int)zl).Clear();
                }
            }
            AssertSame(img, model);
        }
        using (var img = ImageFactory.OpenQcow2(path, new ImageOpenOptions { ReadOnly = true }))
        {
            AssertSame(img, model);
            var r = Qcow2Checker.Check(img, CheckRepair.None);
            Assert.True(r.Corruptions == 0 && r.Leaks == 0, string.Join('\n', r.Messages));
        }
        if (Qemu.Available)
        {
            Qemu.CheckClean(path);
            File.WriteAllBytes(dir["model.raw"], model);
            Qemu.ImgOk("compare", "-f", "qcow2", "-F", "raw", path, dir["model.raw"]);
        }
    }

    internal static void AssertSame(IBlockImage img, byte[] model)
    {
        var buf = new byte[1 << 20];
        for (long off = 0; off < model.Length; off += buf.Length)
        {
            var n = (int)Math.Min(buf.Length, model.Length - off);
            img.Read(off, buf.AsSpan(0, n));
            if (!buf.AsSpan(0, n).SequenceEqual(model.AsSpan((int)off, n)))
            {
                var i = 0;
                while (buf[i] == model[off + i]) i++;
                Assert.Fail($"mismatch at byte {off + i}: image {buf[i]:x2}, expected {model[off + i]:x2}");
            }
        }
    }
}
