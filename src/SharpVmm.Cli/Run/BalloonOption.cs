using SharpVmm.Core;

namespace SharpVmm.Cli.Run;

/// <summary><c>--balloon[=deflate-on-oom=on|off]</c>: the value after the flag, if any.</summary>
public static class BalloonOption
{
    public static bool DeflateOnOom(string? value) => value switch
    {
        null or "" or "deflate-on-oom=off" => false,
        "deflate-on-oom=on" => true,
        _ => throw new ConfigurationException($"--balloon option '{value}' is not understood: use --balloon or --balloon deflate-on-oom=on|off"),
    };
}
