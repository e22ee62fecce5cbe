using System.Text.Json;
using System.Text.Json.Nodes;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Monitor.Commands;

/// <summary>One command invocation: its validated arguments, and actions to run once the reply is queued.</summary>
public sealed class QmpCall(string command, JsonObject arguments)
{
    private List<Action>? _afterReply;

    public string Command { get; } = command;
    public JsonObject Arguments { get; } = arguments;

    public string? GetString(string name) => Arguments[name]?.GetValue<string>();

    public bool? GetBool(string name) => Arguments[name]?.GetValue<bool>();

    public long? GetInt(string name)
    {
        if (Arguments[name] is not JsonValue v) return null;
        return v.TryGetValue(out long l) ? l : throw QmpException.Generic($"Parameter '{name}' is out of range");
    }

    /// <summary>Takes the descriptor the client sent with this command (SCM_RIGHTS); -1 if none. Set by the session.</summary>
    internal Func<int>? ReceivedFd { get; init; }

    /// <summary>The descriptor that came with this command, now the caller's; throws QEMU's error when none did.</summary>
    public int TakeReceivedFd()
    {
        int fd = ReceivedFd?.Invoke() ?? -1;
        return fd >= 0 ? fd : throw QmpException.Generic("No file descriptor supplied via SCM_RIGHTS");
    }

    /// <summary>Runs <paramref name="action"/> after the reply has been queued (quit: the host may exit once the client has its answer).</summary>
    public void AfterReply(Action action) => (_afterReply ??= []).Add(action);

    internal void RunAfterReply()
    {
        if (_afterReply is null) return;
        foreach (var a in _afterReply) a();
    }

    internal static string TypeName(QmpType t) => t switch
    {
        QmpType.String => "string",
        QmpType.Integer => "integer",
        QmpType.Boolean => "boolean",
        QmpType.Array => "array",
        QmpType.Object => "object",
        _ => "any",
    };

    internal static bool Matches(JsonNode? node, QmpType t) => t switch
    {
        QmpType.Any => true,
        QmpType.Object => node is JsonObject,
        QmpType.Array => node is JsonArray,
        QmpType.String => node is JsonValue v && v.GetValueKind() == JsonValueKind.String,
        QmpType.Boolean => node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False,
        QmpType.Integer => node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out long _),
        _ => false,
    };
}
