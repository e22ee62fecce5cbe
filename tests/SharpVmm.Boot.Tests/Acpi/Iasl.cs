using System.Diagnostics;

namespace SharpVmm.Boot.Tests.Acpi;

/// <summary>The ACPICA compiler/disassembler (Debian package acpica-tools), used as an independent oracle.</summary>
internal static class Iasl
{
    public static string? Path { get; } = Find();

    private static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = System.IO.Path.Combine(dir, "iasl");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Runs iasl in <paramref name="directory"/>; returns its exit code and everything it printed.</summary>
    public static (int ExitCode, string Output) Run(string directory, params string[] args)
    {
        var psi = new ProcessStartInfo(Path!) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(30_000)) { p.Kill(); throw new TimeoutException("iasl did not finish in 30 s"); }
        return (p.ExitCode, stdout + stderr.Result);
    }
}

public sealed class IaslFactAttribute : FactAttribute
{
    public IaslFactAttribute()
    {
        if (Iasl.Path is null) Skip = "iasl not installed (Debian package acpica-tools)";
    }
}

/// <summary>A scratch directory removed at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("sharpvmm-acpi-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() => Directory.Delete(Path, recursive: true);
}
