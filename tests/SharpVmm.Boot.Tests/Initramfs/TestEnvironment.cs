namespace SharpVmm.Boot.Tests.Initramfs;

/// <summary>Where the tests find host tools, the fetched guest and the repository.</summary>
internal static class TestEnvironment
{
    public static string? FindTool(string name) => HostTools.Find(name);

    /// <summary>The guest dir guest/fetch.sh fills, when it holds a complete fetch.</summary>
    public static string? GuestDir => GuestFiles.PackagesPresent ? GuestFiles.Dir : null;

    public static string? RepoRoot => RepoFiles.Root;

    public static (int ExitCode, string Output) Run(string file, IEnumerable<string> args, string? workDir = null,
        byte[]? stdin = null, int timeoutMs = 60_000)
    {
        var r = ExternalTool.Run(file, args, workDir, stdin, timeoutMs);
        return (r.ExitCode, r.Output);
    }
}

