namespace SharpVmm.Boot.Tests.Initramfs;

/// <summary>Where the tests find host tools, the fetched guest and the repository.</summary>
internal static class TestEnvironment
{
    public static string? FindTool(string name) => HostTools.Find(name);

    /// <summary>The guest dir guest/fetch.sh fills, when it holds a complete fetch.</summary>
    public static string? GuestDir => GuestFiles.PackagesPresent ? GuestFiles.Dir : null;

    /// <summary>The repository root (the directory holding SharpVmm.slnx), or null when tests run outside it.</summary>
    public static string? RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "SharpVmm.slnx")))
                    return d.FullName;
            }
            return null;
        }
    }

    public static (int ExitCode, string Output) Run(string file, IEnumerable<string> args, string? workDir = null,
        byte[]? stdin = null, int timeoutMs = 60_000)
    {
        var r = ExternalTool.Run(file, args, workDir, stdin, timeoutMs);
        return (r.ExitCode, r.Output);
    }
}

