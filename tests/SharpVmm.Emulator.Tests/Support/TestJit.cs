namespace SharpVmm.Emulator.Tests.Support;

/// <summary>
/// Lets the whole directed and differential suites run under the second tier: with SHARPVMM_TEST_JIT=forced (or
/// on) in the environment, every emulator the tests create without choosing a JIT mode themselves uses it.
/// </summary>
public static class TestJit
{
    public static JitMode FromEnvironment { get; } =
        Environment.GetEnvironmentVariable("SHARPVMM_TEST_JIT")?.ToLowerInvariant() switch
        {
            "forced" => JitMode.Forced,
            "on" => JitMode.On,
            _ => JitMode.Off,
        };

    public static EmuOptions? Apply(EmuOptions? options)
    {
        if (FromEnvironment == JitMode.Off) return options;
        options ??= new EmuOptions();
        return options.Jit == JitMode.Off ? options with { Jit = FromEnvironment } : options;
    }
}
