using System.Diagnostics;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Boot.Tests.Initramfs;

/// <summary>Where the tests find host tools, the fetched guest and the repository.</summary>
internal static class TestEnvironment
{
    public static string? FindTool(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (dir.Length == 0)
                continue;
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    /// <summary>The guest dir guest/fetch.sh fills, when it holds a complete fetch.</summary>
    public static string? GuestDir
    {
        get
        {
            string dir = GuestInitramfs.DefaultGuestDir;
            foreach (var f in new[] { "vmlinuz", "busybox", "kernel-version", "packages" })
            {
                if (!File.Exists(Path.Combine(dir, f)))
                    return null;
            }
            return Directory.Exists(Path.Combine(dir, "modules")) ? dir : null;
        }
    }

    public static string MissingGuestReason =>
        $"no fetched guest in {GuestInitramfs.DefaultGuestDir}: run guest/fetch.sh (or set SHARPVMM_GUEST_DIR)";

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
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
            WorkingDirectory = workDir ?? Environment.CurrentDirectory,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        var stderrTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return (-1, $"timed out after {timeoutMs} ms\n{stdoutTask.Result}{stderrTask.Result}");
        }
        return (p.ExitCode, stdoutTask.Result + stderrTask.Result);
    }
}

/// <summary>A fact that needs the fetched guest (guest/fetch.sh).</summary>
internal sealed class GuestFactAttribute : FactAttribute
{
    public GuestFactAttribute()
    {
        if (TestEnvironment.GuestDir is null)
            Skip = TestEnvironment.MissingGuestReason;
    }
}

/// <summary>A fact that needs a host tool on PATH.</summary>
internal sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(string tool, string package)
    {
        if (TestEnvironment.FindTool(tool) is null)
            Skip = $"'{tool}' is not installed (Debian package '{package}')";
    }
}
