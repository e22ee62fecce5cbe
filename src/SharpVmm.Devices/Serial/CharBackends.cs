using SharpVmm.Core;

namespace SharpVmm.Devices.Serial;

/// <summary>Parses the command line's backend specs: <c>stdio</c>, <c>file:PATH</c>, <c>unix:PATH</c>, <c>none</c>.</summary>
public static class CharBackends
{
    public static ICharBackend? Create(string spec)
    {
        if (spec == "stdio") return new StdioBackend();
        if (spec == "none") return null;
        if (spec.StartsWith("file:", StringComparison.Ordinal) && spec.Length > 5) return new FileBackend(spec[5..]);
        if (spec.StartsWith("unix:", StringComparison.Ordinal) && spec.Length > 5) return new UnixSocketBackend(spec[5..]);
        throw new ConfigurationException($"unknown serial backend '{spec}': use stdio, file:PATH, unix:PATH or none");
    }
}
