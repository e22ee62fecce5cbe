using System.Globalization;
using SharpVmm.Core;

namespace SharpVmm.Devices.Serial;

/// <summary>Where a serial line or console goes.</summary>
public enum CharBackendKind { None, Stdio, File, Unix, Pty }

/// <summary>
/// A character backend as written on the command line (<c>stdio</c>, <c>file:PATH</c>, <c>unix:PATH</c>,
/// <c>pty[,logfile=PATH[,logappend=on]|,logfd=N]</c>, <c>none</c>), parsed once: the builder and the command-line
/// checks read its fields, and <see cref="Create"/> opens it.
/// </summary>
public sealed record CharBackendSpec(CharBackendKind Kind, string? Path = null, string? LogFile = null, bool LogAppend = false, int LogFd = -1)
{
    public const string Syntax = "stdio, file:PATH, unix:PATH, pty[,logfile=PATH[,logappend=on]|,logfd=N] or none";

    public static CharBackendSpec Parse(string spec)
    {
        if (spec == "stdio") return new(CharBackendKind.Stdio);
        if (spec == "none") return new(CharBackendKind.None);
        if (spec.StartsWith("file:", StringComparison.Ordinal) && spec.Length > 5) return new(CharBackendKind.File, spec[5..]);
        if (spec.StartsWith("unix:", StringComparison.Ordinal) && spec.Length > 5) return new(CharBackendKind.Unix, spec[5..]);
        if (spec == "pty" || spec.StartsWith("pty,", StringComparison.Ordinal)) return ParsePty(spec);
        throw new ConfigurationException($"unknown serial backend '{spec}': use {Syntax}");
    }

    private static CharBackendSpec ParsePty(string spec)
    {
        string? log = null;
        bool append = false;
        int fd = -1;
        foreach (string item in spec.Split(',')[1..])
        {
            if (item.StartsWith("logfile=", StringComparison.Ordinal) && item.Length > 8 && log is null && fd < 0) log = item[8..];
            else if (item.StartsWith("logfd=", StringComparison.Ordinal) && log is null && fd < 0
                && int.TryParse(item.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 2)
                fd = n;
            else if (item is "logappend=on" or "logappend=off") append = item == "logappend=on";
            else throw new ConfigurationException($"serial backend '{spec}': '{item}' is not understood: use {Syntax}");
        }
        return new(CharBackendKind.Pty, null, log, append, fd);
    }

    /// <summary>Opens the backend; null for <c>none</c>.</summary>
    public ICharBackend? Create() => Kind switch
    {
        CharBackendKind.Stdio => new StdioBackend(),
        CharBackendKind.File => new FileBackend(Path!),
        CharBackendKind.Unix => new UnixSocketBackend(Path!),
        CharBackendKind.Pty => new PtyBackend(LogFile, LogAppend, LogFd),
        _ => null,
    };
}
