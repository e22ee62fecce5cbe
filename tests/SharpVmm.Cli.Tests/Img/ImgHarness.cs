using System.CommandLine;
using SharpVmm.Cli.Img;

namespace SharpVmm.Cli.Tests.Img;

internal static class ImgHarness
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test") { ImgCommand.Create() };
        var o = new StringWriter();
        var e = new StringWriter();
        var code = root.Parse(["img", .. args]).Invoke(new InvocationConfiguration { Output = o, Error = e });
        return (code, o.ToString(), e.ToString());
    }

    public static string Ok(params string[] args)
    {
        var (code, o, e) = Run(args);
        if (code != 0) throw new Xunit.Sdk.XunitException($"img {string.Join(' ', args)} exit {code}: {e}{o}");
        return o;
    }

    public static readonly string? QemuImg = HostTools.Find("qemu-img");
    public static readonly string? QemuIoPath = HostTools.Find("qemu-io");

    public static (int Code, string Out, string Err) Tool(string tool, params string[] args)
    {
        var r = ExternalTool.Run(tool, args);
        return (r.ExitCode, r.Stdout, r.Stderr);
    }

    public static string Qemu(params string[] args)
    {
        var (c, o, e) = Tool(QemuImg!, args);
        if (c != 0) throw new Xunit.Sdk.XunitException($"qemu-img {string.Join(' ', args)} exit {c}: {e}{o}");
        return o;
    }

    public static void QemuIo(string img, params string[] cmds)
    {
        var args = new List<string>();
        foreach (var c in cmds) { args.Add("-c"); args.Add(c); }
        args.Add(img);
        var (code, o, e) = Tool(QemuIoPath!, [.. args]);
        if (code != 0 || o.Contains("verification failed", StringComparison.Ordinal) || e.Length > 0)
            throw new Xunit.Sdk.XunitException($"qemu-io {string.Join(' ', cmds)}: {e}{o}");
    }
}

public sealed class Scratch : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("sharpvmm-img-").FullName;
    public string this[string name] => Path.Combine(Dir, name);
    public void Dispose()
    {
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}
