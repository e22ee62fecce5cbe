namespace SharpVmm.Boot.Tests.Acpi;

/// <summary>The ACPICA compiler/disassembler (Debian package acpica-tools), used as an independent oracle.</summary>
internal static class Iasl
{
    public static string? Path { get; } = HostTools.Find("iasl");

    /// <summary>Runs iasl in <paramref name="directory"/>; returns its exit code and everything it printed.</summary>
    public static (int ExitCode, string Output) Run(string directory, params string[] args)
    {
        var r = ExternalTool.Run(Path!, args, directory, timeoutMs: 30_000);
        return (r.ExitCode, r.Output);
    }
}
