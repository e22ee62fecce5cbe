using System.Globalization;
using SharpVmm.Block;

namespace SharpVmm.Bench.Block;

/// <summary>
/// 4 KiB sequential and strided-random read/write throughput of SharpVmm.Block beside `qemu-img bench` on the same raw
/// and qcow2 files. qemu-img bench has no random mode, so "random" is a stride of 7919 blocks wrapping around the image
/// (it visits every block once in a scattered order), used identically on both sides. SharpVmm issues requests synchronously from one thread (depth 1); qemu's depth is --qemu-depth (default 1).
/// qemu's time is the one it reports itself (start-up, open and its flush at close excluded); ours likewise times the requests alone. Writes go to freshly created images, so qcow2 rows include cluster allocation.
/// </summary>
public sealed class BlockIoBench : IBench
{
    public string Name => "block-io";
    public string Description => "4K seq/random read/write: SharpVmm.Block vs qemu-img bench (--size MiB, --qemu-depth N, --settle S [0])";

    public int Run(string[] args)
    {
        if (BenchTools.QemuImg == null) { Console.Error.WriteLine("qemu-img not installed (apt-get install qemu-utils)"); return 2; }
        var sizeMiB = long.Parse(BenchTools.Arg(args, "--size", "256"), CultureInfo.InvariantCulture);
        // qemu-img bench's own default is depth 64; on this kind of host depth 1..16 is its fastest.
        var qemuDepth = BenchTools.Arg(args, "--qemu-depth", "1");
        var settle = double.Parse(BenchTools.Arg(args, "--settle", "0"), CultureInfo.InvariantCulture);
        var dir = Directory.CreateTempSubdirectory("sharpvmm-bench-").FullName;
        var size = sizeMiB << 20;
        const int bs = 4096;
        var count = (int)(size / bs);
        const long strideBlocks = 7919;
        try
        {
            Console.WriteLine($"{"row",-34} {"qemu-img",12} {"SharpVmm",12} unit   (ratio >1: SharpVmm faster)");
            foreach (var fmt in new[] { "raw", "qcow2" })
            {
                foreach (var random in new[] { false, true })
                {
                    var step = random ? (strideBlocks * bs).ToString(CultureInfo.InvariantCulture) : bs.ToString(CultureInfo.InvariantCulture);
                    var q = Path.Combine(dir, $"q.{fmt}");
                    var o = Path.Combine(dir, $"o.{fmt}");
                    foreach (var f in new[] { q, o }) using (ImageFactory.Create(f, fmt, size)) { }
                    BenchTools.Sync();
                    BenchTools.Settle(settle);
                    var tqw = BenchTools.QemuBench("bench", "-w", "-f", fmt, "-t", "writeback", "-d", qemuDepth, "-c", count.ToString(CultureInfo.InvariantCulture), "-s", "4k", "-S", step, "--pattern=0x5a", q);
                    BenchTools.Sync();
                    BenchTools.Settle(settle);
                    var tow = OurLoop(o, size, count, bs, random ? strideBlocks : 1, write: true);
                    var kind = random ? "rand" : "seq";
                    BenchTools.Row($"{fmt} {kind} write 4K (alloc)", count * (double)bs / (1 << 20) / tqw, count * (double)bs / (1 << 20) / tow, "MiB/s");
                    BenchTools.DropCaches(q, o);
                    var tqr = BenchTools.QemuBench("bench", "-f", fmt, "-t", "writeback", "-d", qemuDepth, "-c", count.ToString(CultureInfo.InvariantCulture), "-s", "4k", "-S", step, q);
                    var tor = OurLoop(o, size, count, bs, random ? strideBlocks : 1, write: false);
                    BenchTools.Row($"{fmt} {kind} read 4K", count * (double)bs / (1 << 20) / tqr, count * (double)bs / (1 << 20) / tor, "MiB/s");
                    foreach (var f in new[] { q, o }) File.Delete(f);
                }
            }
            return 0;
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// Times the requests alone, as qemu-img bench reports its own: opening the image and the final flush are outside
    /// the timed part (qemu-img bench without --flush-interval issues no flush while timing; checked with strace: its one
    /// fdatasync comes at close, after "Run completed"). The flush still runs, so both sides leave the same state behind.
    /// </summary>
    private static double OurLoop(string path, long size, int count, int bs, long strideBlocks, bool write)
    {
        using var img = ImageFactory.Open(path, new ImageOpenOptions { ReadOnly = !write });
        var buf = new byte[bs];
        Array.Fill(buf, (byte)0x5a);
        var blocks = size / bs;
        long block = 0;
        var t = BenchTools.Time(() =>
        {
            for (var i = 0; i < count; i++)
            {
                if (write) img.Write(block * bs, buf);
                else img.Read(block * bs, buf);
                block = (block + strideBlocks) % blocks;
            }
        });
        if (write) img.Flush();
        return t;
    }
}
