using Microsoft.Extensions.Logging;

namespace SharpVmm.Cli;

/// <summary>Logs go to stderr (stdout belongs to the guest's console); SHARPVMM_LOG=debug|info|warning|error sets the level.</summary>
public static class Logging
{
    public static ILoggerFactory CreateFactory()
    {
        var level = (Environment.GetEnvironmentVariable("SHARPVMM_LOG") ?? "warning").ToLowerInvariant() switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "info" or "information" => LogLevel.Information,
            "error" => LogLevel.Error,
            "none" => LogLevel.None,
            _ => LogLevel.Warning,
        };
        return LoggerFactory.Create(b => b
            .SetMinimumLevel(level)
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; })
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
    }
}
