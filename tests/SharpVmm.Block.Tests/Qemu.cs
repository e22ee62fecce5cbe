using System.Diagnostics;

namespace SharpVmm.Block.Tests;

/// <summary>The reference tools, qemu-img and qemu-io (Debian qemu-utils), run as child processes.</summary>
internal static class Qemu
{
    public static readonly string? Img = Find("qemu-img");
    public static readonly string? Io = Find("qemu-io");
    public static bool Available => Img != null && Io != null;

    private static string? Find(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':'))
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    public static (int Code, string Out, string Err) Run(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, so.Result, se);
    }

    public static string ImgOk(params string[] args)
    {
        var (code, o, e) = Run(Img!, args);
        if (code != 0) throw new Xunit.Sdk.XunitException($"qemu-img {string.Join(' ', args)} failed ({code}): {e}{o}");
        return o;
    }

    public static string IoOk(string image, params string[] commands)
    {
        var args = new List<string> { "-f", "qcow2" };
        foreach (var c in commands) { args.Add("-c"); args.Add(c); }
        args.Add(image);
        var (code, o, e) = Run(Io!, [.. args]);
        if (code != 0 || o.Contains("Pattern verification failed", StringComparison.Ordinal) || e.Length > 0)
            throw new Xunit.Sdk.XunitException($"qemu-io {string.Join(' ', commands)} on {image} failed ({code}): {e}{o}");
        return o;
    }

    /// <summary>qemu-img check must find neither corruption nor leaks.</summary>
    public static void CheckClean(string image)
    {
        var (code, o, e) = Run(Img!, "check", image);
        if (code != 0) throw new Xunit.Sdk.XunitException($"qemu-img check {image} exit {code}: {o}{e}");
    }
}

/// <summary>A fact that needs qemu-img and qemu-io; skipped with the reason when they are missing.</summary>
public sealed class QemuFactAttribute : FactAttribute
{
    public QemuFactAttribute()
    {
        if (!Qemu.Available) Skip = "qemu-img/qemu-io not installed (apt-get install qemu-utils)";
    }
}

public sealed class QemuTheoryAttribute : TheoryAttribute
{
    public QemuTheoryAttribute()
    {
        if (!Qemu.Available) Skip = "qemu-img/qemu-io not installed (apt-get install qemu-utils)";
    }
}

/// <summary>A scratch directory removed after the test.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("sharpvmm-block-").FullName;
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}

/// <summary>Deterministic test data: every byte depends on its offset and a seed, so misplaced data shows.</summary>
internal static class Pattern
{
    public static void Fill(Span<byte> b, long offset, int seed)
    {
        for (var i = 0; i < b.Length; i++)
        {
            var x = (ulong)(offset + i) * 0x9E3779B97F4A7C15UL + (ulong)seed * 0xBF58476D1CE4E5B9UL;
            b[i] = (byte)((x >> 32) ^ (x >> 56));
        }
    }

    public static byte[] Make(long offset, int length, int seed)
    {
        var b = new byte[length];
        Fill(b, offset, seed);
        return b;
    }
}
