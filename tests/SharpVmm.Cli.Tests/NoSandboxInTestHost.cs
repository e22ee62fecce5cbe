using System.Runtime.CompilerServices;

namespace SharpVmm.Cli.Tests;

/// <summary>
/// These tests call Program.Main inside the test host: a default-on sandbox would filter the test host itself
/// (for good: a seccomp filter cannot be removed), and its next Process.Start would be killed. The sandbox is
/// tested on child processes (EndToEnd, and SandboxTests here with explicit --sandbox on in a child).
/// </summary>
internal static class NoSandboxInTestHost
{
    [ModuleInitializer]
    internal static void TurnOff() => Environment.SetEnvironmentVariable(SharpVmm.Cli.Run.SandboxOption.Variable, "off");
}
