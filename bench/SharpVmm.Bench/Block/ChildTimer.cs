using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SharpVmm.Bench.Block;

/// <summary>
/// Runs a program to completion and measures its wall time and the CPU time (user + system) it and its threads used.
/// CPU time comes from getrusage(RUSAGE_CHILDREN) around the run: the kernel's own accounting of the reaped child,
/// far less sensitive to other load on a shared host than wall time is.
/// </summary>
internal static partial class ChildTimer
{
    public readonly record struct Timing(double Wall, double Cpu);

    public static Timing Run(string tool, IReadOnlyList<string> args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var before = ChildrenCpu();
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var wall = sw.Elapsed.TotalSeconds;
        var cpu = ChildrenCpu() - before;
        if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} {string.Join(' ', args)} exited {p.ExitCode}: {e}{o.Result}");
        return new Timing(wall, cpu);
    }

    private static double ChildrenCpu()
    {
        // struct rusage: ru_utime and ru_stime (struct timeval: two longs each) first, then 14 longs.
        Span<long> ru = stackalloc long[18];
        if (GetRusage(-1 /* RUSAGE_CHILDREN */, ref MemoryMarshal.GetReference(ru)) != 0)
            throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        return ru[0] + ru[1] / 1e6 + ru[2] + ru[3] / 1e6;
    }

    [LibraryImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static partial int GetRusage(int who, ref long usage);

    /// <summary>Drops one file's pages from the page cache (posix_fadvise DONTNEED after writing back its dirty pages).</summary>
    public static void Evict(string path)
    {
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        if (FDataSync(h.DangerousGetHandle().ToInt32()) != 0 || FAdvise(h.DangerousGetHandle().ToInt32(), 0, 0, 4 /* DONTNEED */) != 0)
            throw new InvalidOperationException($"cannot evict {path} from the page cache");
    }

    [LibraryImport("libc", EntryPoint = "fdatasync")]
    private static partial int FDataSync(int fd);

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int FAdvise(int fd, long offset, long len, int advice);
}
