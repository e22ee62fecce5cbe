namespace SharpVmm.Block.Tests;

/// <summary>The reference tools, qemu-img and qemu-io (Debian qemu-utils), run as child processes.</summary>
internal static class Qemu
{
    public static readonly string? Img = HostTools.Find("qemu-img");
    public static readonly string? Io = HostTools.Find("qemu-io");
    public static bool Available => Img != null && Io != null;

    public static (int Code, string Out, string Err) Run(string tool, params string[] args)
    {
        var r = ExternalTool.Run(tool, args);
        return (r.ExitCode, r.Stdout, r.Stderr);
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
