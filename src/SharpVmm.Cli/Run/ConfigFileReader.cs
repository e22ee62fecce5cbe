using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SharpVmm.Cli.Run;

/// <summary>
/// Reads a <c>--config</c> file: one JSON object whose keys are the command's option names without the leading
/// "--" and whose values are what the option takes on the command line, typed as JSON (a switch is true/false, a
/// number option a JSON number, a repeatable option an array). The object becomes the equivalent command-line
/// tokens; the command's own parser then checks the values exactly as it checks typed ones.
/// </summary>
public static class ConfigFileReader
{
    private static readonly JsonDocumentOptions JsonOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>A token for the parser and the key it came from (so a refused value can be blamed on its key).</summary>
    public readonly record struct Setting(string Key, Option Option, string Token);

    /// <summary>The file's settings as <c>--name=value</c> tokens, skipping the options in <paramref name="overridden"/>.</summary>
    /// <param name="options">The options a key may name.</param>
    public static List<Setting> Read(string path, IReadOnlyList<Option> options, Func<Option, bool> overridden)
    {
        string text = ReadText(path);
        string name = path;
        string baseDirectory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text, JsonOptions);
        }
        catch (JsonException ex)
        {
            string where = ex.LineNumber is { } line ? $"{name}:{line + 1}:{(ex.BytePositionInLine ?? 0) + 1}" : name;
            throw new ConfigFileException($"{where}: not valid JSON: {Describe(ex)}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ConfigFileException($"{name}: must hold one JSON object of options, e.g. {{\"memory\": \"512M\", \"cpus\": 2}}, not {Kind(root)}");
            var settings = new List<Setting>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                string key = property.Name;
                if (!seen.Add(key)) throw new ConfigFileException($"{name}: key \"{key}\" appears twice");
                var option = Find(options, key)
                    ?? throw new ConfigFileException($"{name}: unknown key \"{key}\"; the keys are the options of 'run' without their '--': {KeyList(options)}");
                if (overridden(option)) continue; // the command line wins
                if (IsSwitch(option))
                {
                    if (Switch(name, key, property.Value) is { } on)
                        settings.Add(new Setting(key, option, on ? option.Name : $"{option.Name}=false"));
                    continue;
                }
                foreach (string value in Values(name, key, option, property.Value))
                    settings.Add(new Setting(key, option, $"{option.Name}={ConfigFilePaths.Resolve(option, value, baseDirectory)}"));
            }
            return settings;
        }
    }

    /// <summary>The key an option has in a config file: its name without the leading dashes.</summary>
    public static string KeyOf(Option option) => option.Name.TrimStart('-');

    /// <summary>A config file is a page of JSON; anything near this size is not one (and /dev/zero never ends).</summary>
    public const long MaxBytes = 1 << 20;

    private static string ReadText(string path)
    {
        var kind = SharpVmm.Block.HostFile.KindOf(path);
        if (kind is not (SharpVmm.Block.HostFileKind.Missing or SharpVmm.Block.HostFileKind.Regular))
            throw new ConfigFileException($"cannot read config file '{path}': it {SharpVmm.Block.HostFile.Describe(kind)}, not a regular file");
        if (kind == SharpVmm.Block.HostFileKind.Regular && new FileInfo(path).Length > MaxBytes)
            throw new ConfigFileException($"cannot read config file '{path}': it is {new FileInfo(path).Length} bytes, more than the {MaxBytes} a config file may have");
        try
        {
            return File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new ConfigFileException($"cannot read config file '{path}': {ex.Message}");
        }
    }

    private static Option? Find(IReadOnlyList<Option> options, string key)
    {
        foreach (var o in options)
            if (KeyOf(o) == key && o.Name.StartsWith("--", StringComparison.Ordinal)) return o;
        return null;
    }

    private static string KeyList(IReadOnlyList<Option> options)
    {
        var keys = new List<string>();
        foreach (var o in options) keys.Add(KeyOf(o));
        return string.Join(", ", keys);
    }

    private static bool IsSwitch(Option option) => option.ValueType == typeof(bool) || option.ValueType == typeof(bool?);

    /// <summary>The option's element type if it takes several values (string[], List&lt;T&gt;), else null.</summary>
    private static Type? ElementType(Option option)
    {
        if (option.Arity.MaximumNumberOfValues <= 1 || option.ValueType == typeof(string)) return null;
        var t = option.ValueType;
        if (t.IsArray) return t.GetElementType();
        // Every many-valued option is declared as T[] or List<T>; the interface walk that would also cover other
        // collections is not available once trimmed.
        if (t.IsGenericType && t.GetGenericArguments() is [var element]) return element;
        return typeof(string);
    }

    /// <summary>A switch's setting: true or false, or null for a JSON null (left unset).</summary>
    private static bool? Switch(string file, string key, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null => null,
        _ => throw WrongType(file, key, "true or false", value),
    };

    /// <summary>The textual values for the option, one per occurrence; none for a JSON null (left unset, as if the key were absent).</summary>
    private static IEnumerable<string> Values(string file, string key, Option option, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Null) return [];
        if (ElementType(option) is { } element)
        {
            if (value.ValueKind != JsonValueKind.Array) return [Scalar(file, key, element, value, list: true)];
            var list = new List<string>();
            int i = 0;
            foreach (var item in value.EnumerateArray())
                list.Add(Scalar(file, $"{key}[{i++}]", element, item, list: true));
            return list;
        }
        return [Scalar(file, key, option.ValueType, value, list: false)];
    }

    private static string Scalar(string file, string key, Type type, JsonElement value, bool list)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        string what;
        if (t == typeof(bool)) what = "true or false";
        else if (IsInteger(t)) what = "an integer";
        else if (t == typeof(double) || t == typeof(float) || t == typeof(decimal)) what = "a number";
        else what = "a string";
        if (list) what += " or an array of them";
        switch (value.ValueKind)
        {
            case JsonValueKind.String when t != typeof(bool) && !IsInteger(t) && !IsNumber(t):
                return value.GetString()!;
            case JsonValueKind.Number when IsInteger(t):
                if (value.TryGetInt64(out long l)) return l.ToString(CultureInfo.InvariantCulture);
                if (value.TryGetUInt64(out ulong u)) return u.ToString(CultureInfo.InvariantCulture);
                throw WrongType(file, key, what, value);
            case JsonValueKind.Number when IsNumber(t) || t == typeof(string):
                // A bare number is fine where the option takes text: "memory": 512 reads as --memory 512.
                return value.GetRawText();
            case JsonValueKind.True or JsonValueKind.False when t == typeof(bool):
                return value.ValueKind == JsonValueKind.True ? "true" : "false";
            default:
                throw WrongType(file, key, what, value);
        }
    }

    private static bool IsInteger(Type t) =>
        t == typeof(int) || t == typeof(long) || t == typeof(uint) || t == typeof(ulong)
        || t == typeof(short) || t == typeof(ushort) || t == typeof(byte) || t == typeof(sbyte);

    private static bool IsNumber(Type t) => t == typeof(double) || t == typeof(float) || t == typeof(decimal);

    private static ConfigFileException WrongType(string file, string key, string expected, JsonElement got)
        => new($"{file}: \"{key}\" must be {expected}, not {Kind(got)}");

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => $"the string {Quote(e.GetString()!)}",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => "null",
    };

    private static string Quote(string s) => System.Text.Json.Nodes.JsonValue.Create(s.Length <= 40 ? s : s[..40] + "...").ToJsonString();

    /// <summary>The JSON reader's complaint without the position suffix we already give as file:line:column.</summary>
    private static string Describe(JsonException ex)
    {
        string m = ex.Message;
        int cut = m.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut < 0) cut = m.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        return (cut >= 0 ? m[..cut] : m).Trim();
    }
}
