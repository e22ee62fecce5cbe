using System.Diagnostics;

namespace SharpVmm.EndToEnd;

/// <summary>Runs the real <c>sharpvmm</c> (the Cli assembly built beside the tests) as a child process.</summary>
internal static class SharpVmmProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(int timeoutSeconds, params string[] args) => RunWithEnvironment(timeoutSeconds, [], args);

    public static Result RunWithEnvironment(int timeoutSeconds, Dictionary<string, string> environment, params string[] args)
    {
        var psi = StartInfo(args);
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"sharpvmm {string.Join(' ', args)} did not finish within {timeoutSeconds} s");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>How to start <c>sharpvmm ARGS</c> with every stream redirected, for tests that watch it run.</summary>
    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sharpvmm.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }
}
