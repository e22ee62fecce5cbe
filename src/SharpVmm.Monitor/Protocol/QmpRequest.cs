using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpVmm.Monitor.Protocol;

/// <summary>A request envelope: <c>{"execute": NAME, "arguments": {...}, "id": ANY}</c>, checked with QEMU's messages.</summary>
public sealed record QmpRequest(string Command, JsonObject Arguments, JsonNode? Id, bool HasId)
{
    /// <summary>Parses one JSON text; on failure returns null with the error and, if the text was an object carrying one, its id.</summary>
    public static QmpRequest? Parse(byte[] text, out QmpException? error, out JsonNode? id, out bool hasId)
    {
        id = null;
        hasId = false;
        // System.Text.Json checks UTF-8 only when a name or string is read, after Parse returned (found by fuzzing:
        // invalid bytes in a member name threw out of here); QEMU refuses such input as a parse error.
        if (!System.Text.Unicode.Utf8.IsValid(text))
        {
            error = QmpException.Generic("JSON parse error, invalid UTF-8 sequence in string");
            return null;
        }
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text, documentOptions: QmpJson.ParseOptions);
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException)
        {
            error = QmpException.Generic("JSON parse error, " + Describe(text, ex));
            return null;
        }
        if (node is not JsonObject request)
        {
            error = QmpException.Generic("QMP input must be a JSON object");
            return null;
        }
        if (request.TryGetPropertyValue("id", out id))
        {
            hasId = true;
            request.Remove("id"); // detached so the reply can own it
        }
        foreach (var (key, _) in request)
        {
            if (key is not ("execute" or "arguments" or "exec-oob"))
            {
                error = QmpException.Generic($"QMP input member '{key}' is unexpected");
                return null;
            }
        }
        if (request.ContainsKey("exec-oob"))
        {
            error = QmpException.Generic("QMP input member 'exec-oob' is unexpected: this monitor does not offer the 'oob' capability");
            return null;
        }
        if (!request.TryGetPropertyValue("execute", out var execute))
        {
            error = QmpException.Generic("QMP input lacks member 'execute'");
            return null;
        }
        if (execute is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
        {
            error = QmpException.Generic("QMP input member 'execute' must be a string");
            return null;
        }
        JsonObject arguments;
        if (request.TryGetPropertyValue("arguments", out var args) && args is not null)
        {
            if (args is not JsonObject o)
            {
                error = QmpException.Generic("QMP input member 'arguments' must be an object");
                return null;
            }
            request.Remove("arguments");
            arguments = o;
        }
        else if (request.ContainsKey("arguments"))
        {
            error = QmpException.Generic("QMP input member 'arguments' must be an object");
            return null;
        }
        else arguments = [];
        error = null;
        return new QmpRequest(v.GetValue<string>(), arguments, id, hasId);
    }

    private static string Describe(byte[] text, Exception ex)
    {
        // A bare word at top level is QEMU's "invalid keyword"; inside a value, System.Text.Json says what it expected.
        if (text.Length > 0 && text[0] is not ((byte)'{' or (byte)'[' or (byte)'"'))
            return $"invalid keyword '{Encoding.UTF8.GetString(text, 0, Math.Min(text.Length, 64))}'";
        string message = ex.Message;
        int cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut < 0) cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).TrimEnd('.', ' ');
    }
}
