namespace SharpVmm.Monitor.Commands;

public enum QmpType
{
    String,
    Integer,
    Boolean,
    Array,
    Object,
    Any,
}

/// <summary>One argument a command accepts; the table checks presence and type before the handler runs.</summary>
public sealed record QmpParameter(string Name, QmpType Type, bool Required = false)
{
    public static QmpParameter Req(string name, QmpType type) => new(name, type, true);
    public static QmpParameter Opt(string name, QmpType type) => new(name, type, false);
}
