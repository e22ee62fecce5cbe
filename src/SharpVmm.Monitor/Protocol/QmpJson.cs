using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpVmm.Monitor.Protocol;

/// <summary>
/// Writes JSON the way QEMU's monitor does: one line, <c>": "</c> and <c>", "</c> separators, CRLF at the end.
/// Clients only need valid JSON, but people reading a socat session (and scripts written against QEMU) see the same text.
/// </summary>
public static class QmpJson
{
    private static readonly JsonSerializerOptions ValueOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = JsonStreamSplitter.MaxDepth + 1, AllowDuplicateProperties = false };

    public static string Format(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(sb, node);
        return sb.ToString();
    }

    /// <summary>The message as sent on the wire: UTF-8, terminated by CRLF.</summary>
    public static byte[] ToLine(JsonNode? node) => Encoding.UTF8.GetBytes(Format(node) + "\r\n");

    private static void Write(StringBuilder sb, JsonNode? node)
    {
        switch (node)
        {
            case null:
                sb.Append("null");
                break;
            case JsonObject o:
                sb.Append('{');
                bool first = true;
                foreach (var (key, value) in o)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    sb.Append(JsonValue.Create(key).ToJsonString(ValueOptions)).Append(": ");
                    Write(sb, value);
                }
                sb.Append('}');
                break;
            case JsonArray a:
                sb.Append('[');
                for (int i = 0; i < a.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    Write(sb, a[i]);
                }
                sb.Append(']');
                break;
            default:
                // A parsed number keeps its original text, so an id like 1.50 comes back exactly as sent.
                sb.Append(node.ToJsonString(ValueOptions));
                break;
        }
    }
}
