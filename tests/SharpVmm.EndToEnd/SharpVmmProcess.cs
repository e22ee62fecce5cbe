using System.Diagnostics;

namespace SharpVmm.EndToEnd;

/// <summary>Runs the real <c>sharpvmm</c> (the Cli assembly built beside the tests) as a child process.</summary>
internal static class SharpVmmProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(int timeoutSeconds, params string[] args) => RunWithEnvironment(timeoutSeconds, [], args);

    public static Result RunWithEnvironment(int timeoutSeconds, Dictionary<string, string> environment, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "sharpvmm.dll");
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
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
}
