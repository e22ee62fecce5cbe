namespace SharpVmm.Devices.Serial;

public static class CharBackends
{
    public const string Syntax = CharBackendSpec.Syntax;

    /// <summary>Parses <paramref name="spec"/> and opens the backend it names; null for <c>none</c>.</summary>
    public static ICharBackend? Create(string spec) => CharBackendSpec.Parse(spec).Create();
}
