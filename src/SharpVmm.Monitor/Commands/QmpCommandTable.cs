using System.Text.Json.Nodes;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Monitor.Commands;

/// <summary>Runs a command; returns the value for <c>{"return": ...}</c> (null means <c>{}</c>) or throws <see cref="QmpException"/>.</summary>
public delegate JsonNode? QmpHandler(QmpCall call);

/// <summary>
/// The commands a server answers, by name. Features that come later (query-block, migrate, balloon, snapshots)
/// register here and appear in query-commands; until then they are unknown, as in a QEMU built without them.
/// </summary>
public sealed class QmpCommandTable
{
    private readonly record struct Entry(QmpParameter[] Parameters, QmpHandler Handler);

    private readonly Dictionary<string, Entry> _commands = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private readonly object _lock = new();

    public void Register(string name, QmpHandler handler, params QmpParameter[] parameters)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_lock)
        {
            if (!_commands.TryAdd(name, new Entry(parameters, handler)))
                throw new InvalidOperationException($"QMP command '{name}' is registered twice");
            _order.Add(name);
        }
    }

    /// <summary>Every command with the parameters it accepts, in registration order (query-qmp-schema is built from this).</summary>
    public IReadOnlyList<(string Name, IReadOnlyList<QmpParameter> Parameters)> Describe()
    {
        lock (_lock)
        {
            var list = new List<(string, IReadOnlyList<QmpParameter>)>(_order.Count);
            foreach (string name in _order) list.Add((name, _commands[name].Parameters));
            return list;
        }
    }

    public bool Contains(string name)
    {
        lock (_lock) return _commands.ContainsKey(name);
    }

    public IReadOnlyList<string> Names
    {
        get { lock (_lock) return [.. _order]; }
    }

    /// <summary>Checks the arguments against the command's parameters (QEMU's messages) and runs it.</summary>
    public JsonNode? Invoke(QmpCall call)
    {
        Entry entry;
        lock (_lock)
        {
            if (!_commands.TryGetValue(call.Command, out entry))
                throw new QmpException(QmpErrorClass.CommandNotFound, $"The command {call.Command} has not been found");
        }
        foreach (var (key, value) in call.Arguments)
        {
            var p = Array.Find(entry.Parameters, x => x.Name == key)
                ?? throw QmpException.Generic($"Parameter '{key}' is unexpected");
            if (!QmpCall.Matches(value, p.Type))
                throw QmpException.Generic($"Invalid parameter type for '{key}', expected: {QmpCall.TypeName(p.Type)}");
        }
        foreach (var p in entry.Parameters)
        {
            if (p.Required && !call.Arguments.ContainsKey(p.Name))
                throw QmpException.Generic($"Parameter '{p.Name}' is missing");
        }
        return entry.Handler(call);
    }
}
