using SharpVmm.Core;

namespace SharpVmm.Devices.Serial;

public static class CharBackends
{
    public const string Syntax = "stdio, file:PATH, unix:PATH, pty[,logfile=PATH[,logappend=on]|,logfd=N] or none";

    public static ICharBackend? Create(string spec)
    {
        if (spec == "stdio") return new StdioBackend();
        if (spec == "none") return null;
        if (spec.StartsWith("file:", StringComparison.Ordinal) && spec.Length > 5) return new FileBackend(spec[5..]);
        if (spec.StartsWith("unix:", StringComparison.Ordinal) && spec.Length > 5) return new UnixSocketBackend(spec[5..]);
        if (spec == "pty" || spec.StartsWith("pty,", StringComparison.Ordinal)) return CreatePty(spec);
        throw new ConfigurationException($"unknown serial backend '{spec}': use {Syntax}");
    }

    private static PtyBackend CreatePty(string spec)
    {
        string? log = null;
        bool append = false;
        int fd = -1;
        foreach (string item in spec.Split(',')[1..])
        {
            if (item.StartsWith("logfile=", StringComparison.Ordinal) && item.Length > 8 && log is null && fd < 0) log = item[8..];
            else if (item.StartsWith("logfd=", StringComparison.Ordinal) && log is null && fd < 0
                && int.TryParse(item.AsSpan(6), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n > 2)
                fd = n;
            else if (item is "logappend=on" or "logappend=off") append = item == "logappend=on";
            else throw new ConfigurationException($"serial backend '{spec}': '{item}' is not understood: use {Syntax}");
        }
        return new PtyBackend(log, append, fd);
    }
}
