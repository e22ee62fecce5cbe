namespace SharpVmm.Cli.Run;

/// <summary>The default of <c>--sandbox</c>: on, unless SHARPVMM_SANDBOX=off (for hosts or harnesses that run the VMM inside a process that must not be filtered).</summary>
public static class SandboxOption
{
    public const string Variable = "SHARPVMM_SANDBOX";

    public static string Default()
        => Environment.GetEnvironmentVariable(Variable) is "off" or "0" ? "off" : "on";
}
