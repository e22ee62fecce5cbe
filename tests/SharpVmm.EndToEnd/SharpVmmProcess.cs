using System.Diagnostics;

namespace SharpVmm.EndToEnd;

/// <summary>Runs the real <c>sharpvmm</c> (the native binary named by SHARPVMM_BIN, else the Cli assembly built beside the tests) as a child process.</summary>
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
        // scripts/test.sh points SHARPVMM_BIN at the native (AOT) binary users run; without it, the JIT build beside the tests.
        string? native = Environment.GetEnvironmentVariable("SHARPVMM_BIN");
        var psi = new ProcessStartInfo(!string.IsNullOrEmpty(native) ? native : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (string.IsNullOrEmpty(native)) psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sharpvmm.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>
    /// Starts <c>sharpvmm run ARGS</c> in <paramref name="workingDirectory"/> with no input, draining its output so it never
    /// blocks on a full pipe: for tests that talk to the VM over QMP while it runs.
    /// </summary>
    public static Process StartRun(string workingDirectory, params string[] runArgs)
    {
        var psi = StartInfo(["run", .. runArgs]);
        psi.WorkingDirectory = workingDirectory;
        var p = Process.Start(psi)!;
        p.StandardInput.Close();
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        return p;
    }

    /// <summary>Connects to <paramref name="vm"/>'s QMP socket once it is up (or fails the test when the VM exits first).</summary>
    public static async Task<Monitor.Client.QmpClient> ConnectQmpAsync(string socket, Process vm, int timeoutSeconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            if (vm.HasExited) Assert.Fail($"sharpvmm exited with {vm.ExitCode} before its QMP socket was up");
            if (File.Exists(socket))
            {
                try { return await Monitor.Client.QmpClient.ConnectAndNegotiateAsync("unix:" + socket); }
                catch (Monitor.Protocol.QmpConnectionException) when (DateTime.UtcNow < deadline) { }
                catch (IOException) when (DateTime.UtcNow < deadline) { }
                catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline) { }
            }
            if (DateTime.UtcNow > deadline) Assert.Fail($"the QMP socket did not come up within {timeoutSeconds} s");
            await Task.Delay(100);
        }
    }
}
