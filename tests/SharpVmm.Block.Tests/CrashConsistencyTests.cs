using System.Diagnostics;
using SharpVmm.Block.CrashWriter;
using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block.Tests;

/// <summary>
/// SIGKILLs a writer process at random moments during heavy allocation; afterwards the image must check without
/// corruption (leaks are allowed) and every write the writer had flushed must read back, through us and through qemu.
/// </summary>
public class CrashConsistencyTests
{
    public static TheoryData<int, int, bool> Configs() => new() { { 65536, 16, false }, { 512, 64, false }, { 4096, 1, false }, { 65536, 16, true } };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Killed_writer_leaves_a_consistent_image_with_all_flushed_data(int clusterSize, int refcountBits, bool lazyRefcounts)
    {
        var writer = Path.Combine(AppContext.BaseDirectory, "CrashWriter.dll");
        Assert.True(File.Exists(writer), $"{writer} was not built");
        using var dir = new TempDir();
        var killedMidway = 0;
        for (var round = 0; round < 3; round++)
        {
            var seed = clusterSize + refcountBits * 1000 + round + (lazyRefcounts ? 77 : 0);
            var path = dir[$"crash{round}.qcow2"];
            const long size = 32 << 20;
            using (ImageFactory.Create(path, "qcow2", size, new CreateOptions { ClusterSize = clusterSize, RefcountBits = refcountBits, LazyRefcounts = lazyRefcounts })) { }
            var flushed = RunAndKill(writer, path, seed, new Random(seed).Next(5, 400));
            var context = $"seed {seed}, cluster {clusterSize}, refcount_bits {refcountBits}, lazy {lazyRefcounts}, {flushed} writes flushed";
            Assert.True(flushed > 0, $"{context}: the writer never flushed");

            var check = ImageCheck.Run(path, CheckRepair.None);
            Assert.True(check.Corruptions == 0, $"{context}: {string.Join('\n', check.Messages)}");
            if (Qemu.Available)
            {
                var (code, o, e) = Qemu.Run(Qemu.Img!, "check", path);
                Assert.True(code is 0 or 3, $"{context}: qemu-img check exit {code}: {o}{e}");
            }
            var plan = new WritePlan(seed, size);
            if (flushed < plan.Slots) killedMidway++;
            Console.Error.WriteLine($"crash test: {context}, leaks {check.Leaks}");
            using (var img = ImageFactory.Open(path, new ImageOpenOptions { ReadOnly = true }))
                Verify(img, plan, flushed, context);
            if (Qemu.Available)
            {
                Qemu.ImgOk("convert", "-O", "raw", path, dir["out.raw"]);
                using var raw = ImageFactory.Open(dir["out.raw"], new ImageOpenOptions { ReadOnly = true, Format = "raw" });
                Verify(raw, plan, flushed, context + " (read by qemu)");
            }
            // The crashed image stays usable: it opens read-write and its leaks can be repaired.
            var repaired = ImageCheck.Run(path, CheckRepair.Leaks);
            Assert.True(repaired.Leaks == 0 && repaired.Corruptions == 0, context);
        }
        Assert.True(killedMidway > 0, "every writer finished before it could be killed; the test exercised no crash");
    }

    private static int RunAndKill(string writer, string path, int seed, int killAfterMs)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(writer);
        psi.ArgumentList.Add(path);
        psi.ArgumentList.Add(seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var p = Process.Start(psi)!;
        var flushed = 0;
        var first = new ManualResetEventSlim();
        var errors = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && line.StartsWith("flushed ", StringComparison.Ordinal))
            {
                Volatile.Write(ref flushed, int.Parse(line[8..], System.Globalization.CultureInfo.InvariantCulture));
                first.Set();
            }
        };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (errors) errors.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (first.Wait(TimeSpan.FromSeconds(30)) && !p.WaitForExit(killAfterMs))
        {
            p.Kill();
        }
        if (!p.WaitForExit(30000)) p.Kill();
        p.WaitForExit();
        lock (errors) Assert.True(errors.Length == 0 || p.ExitCode != 0 && errors.Length == 0, $"writer stderr: {errors}");
        return Volatile.Read(ref flushed);
    }

    private static void Verify(IBlockImage img, WritePlan plan, int flushed, string context)
    {
        var buf = new byte[plan.SlotSize];
        for (var i = 0; i < flushed; i++)
        {
            var (off, data) = plan.Write(i);
            img.Read(off, buf);
            var len = data?.Length ?? 0;
            if (data != null && !buf.AsSpan(0, len).SequenceEqual(data))
                Assert.Fail($"{context}: flushed write {i} at {off} did not survive");
            if (buf.AsSpan(len).IndexOfAnyExcept((byte)0) >= 0)
                Assert.Fail($"{context}: bytes after flushed write {i} at {off + len} are not zero");
        }
    }
}
