using System.Diagnostics;

namespace SharpVmm.Testing;

/// <summary>What a finished child process left: its exit code and both output streams.</summary>
public readonly record struct ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;
}

/// <summary>Runs host programs (qemu-img, qemu-io, iasl, gcc, ip...) as child processes for tests.</summary>
public static class ExternalTool
{
    /// <summary>
    /// Runs <paramref name="file"/> to completion, reading both streams concurrently (a child filling one pipe
    /// must not deadlock the other). Past <paramref name="timeoutMs"/> the process tree is killed and the exit
    /// code is -1, with the time-out said in <see cref="ToolResult.Stderr"/>.
    /// </summary>
    public static ToolResult Run(string file, IEnumerable<string> args, string? workDir = null, byte[]? stdin = null,
        int timeoutMs = 300_000)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
            WorkingDirectory = workDir ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return new ToolResult(-1, stdout.Result, $"{file} timed out after {timeoutMs} ms\n{stderr.Result}");
        }
        return new ToolResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    public static ToolResult Run(string file, params string[] args) => Run(file, (IEnumerable<string>)args);

    /// <summary>Runs <paramref name="file"/> and fails the test, with its output, unless it exits 0.</summary>
    public static string RunOk(string file, params string[] args)
    {
        var r = Run(file, args);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', args)} exit {r.ExitCode}: {r.Stderr}{r.Stdout}");
        return r.Stdout;
    }
}
