using System.Text.Json;
using System.Text.Json.Nodes;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// One QEMU option argument as key/value pairs: the legacy form <c>[implied,]key=value,...</c> (split by the shared
/// <see cref="OptionList"/>: a doubled comma is a literal comma; a bare key is <c>key=on</c>) or, when it starts with
/// '{', a JSON object (what libvirt writes for -object, -device, -blockdev, -audiodev and -netdev when the emulator
/// declares JSON support).
/// Each key may be taken once; <see cref="RejectUnused"/> refuses whatever no one took, so nothing is ignored.
/// </summary>
public sealed class QemuOptions
{
    private readonly string _option;
    private readonly List<KeyValuePair<string, string>> _pairs;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    private QemuOptions(string option, List<KeyValuePair<string, string>> pairs)
    {
        _option = option;
        _pairs = pairs;
    }

    public string Option => _option;

    public static QemuOptions Parse(string option, string text, string? impliedKey = null)
    {
        if (text.StartsWith('{')) return ParseJson(option, text);
        var pairs = new List<KeyValuePair<string, string>>();
        var items = OptionList.SplitItems(text);
        for (int n = 0; n < items.Count; n++)
        {
            string item = items[n];
            if (item.Length == 0)
            {
                // A trailing comma (or no text at all) ends the list; an empty item inside it is a mistake.
                if (n == items.Count - 1) break;
                throw new QemuArgException(option, $"empty item in '{text}'");
            }
            var pair = OptionItem.Of(item);
            if (pair.HasValue) pairs.Add(new(pair.Key, pair.Value));
            else if (n == 0 && impliedKey is not null) pairs.Add(new(impliedKey, item));
            else pairs.Add(new(item, "on"));
        }
        for (int a = 0; a < pairs.Count; a++)
            for (int b = a + 1; b < pairs.Count; b++)
                if (pairs[a].Key == pairs[b].Key)
                    throw new QemuArgException(option, $"'{pairs[a].Key}' is given twice");
        return new QemuOptions(option, pairs);
    }

    private static QemuOptions ParseJson(string option, string text)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(text); }
        catch (JsonException ex) { throw new QemuArgException(option, $"not valid JSON: {ex.Message}"); }
        if (node is not JsonObject obj) throw new QemuArgException(option, "JSON must be an object");
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in obj)
        {
            string s = value switch
            {
                // JSON null has one use in libvirt's argv: "backing": null, a qcow2 node opened without its backing chain.
                null => "null",
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonValue v when v.GetValueKind() == JsonValueKind.True => "on",
                JsonValue v when v.GetValueKind() == JsonValueKind.False => "off",
                JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
                _ => throw new QemuArgException(option, $"'{key}': nested values are not supported by SharpVmm"),
            };
            pairs.Add(new(key, s));
        }
        return new QemuOptions(option, pairs);
    }

    public bool Has(string key)
    {
        foreach (var p in _pairs) if (p.Key == key) return true;
        return false;
    }

    /// <summary>The value of <paramref name="key"/>, or null; marks it as understood.</summary>
    public string? Get(string key)
    {
        foreach (var p in _pairs)
        {
            if (p.Key != key) continue;
            _used.Add(key);
            return p.Value;
        }
        return null;
    }

    public string Require(string key, string what)
        => Get(key) ?? throw new QemuArgException(_option, $"{what} needs {key}=");

    /// <summary>on/off (also yes/no, true/false, as QEMU accepts); null when absent.</summary>
    public bool? GetBool(string key)
    {
        string? v = Get(key);
        return v switch
        {
            null => null,
            "on" or "yes" or "true" => true,
            "off" or "no" or "false" => false,
            _ => throw new QemuArgException(_option, $"{key}='{v}' is not on or off"),
        };
    }

    /// <summary>Accepts <paramref name="key"/> only with one of <paramref name="allowed"/>; anything else is refused by name.</summary>
    public void Allow(string key, params string[] allowed)
    {
        string? v = Get(key);
        if (v is null || Array.IndexOf(allowed, v) >= 0) return;
        throw new QemuArgException(_option, $"{key}={v} is not supported by SharpVmm (supported: {string.Join(", ", allowed)})");
    }

    /// <summary>Takes a key whose value has no effect on SharpVmm's machine (ids, PCI addresses on virtio-mmio, ...).</summary>
    public void Accept(params string[] keys)
    {
        foreach (string k in keys) Get(k);
    }

    /// <summary>Refuses the first key nothing took; <paramref name="what"/> says which kind of -object, -device, ... it was on.</summary>
    public void RejectUnused(string what)
    {
        if (what.StartsWith(_option, StringComparison.Ordinal)) what = what[_option.Length..].TrimStart();
        foreach (var p in _pairs)
            if (!_used.Contains(p.Key))
                throw new QemuArgException(_option, what.Length == 0 ? $"'{p.Key}' is not supported by SharpVmm" : $"{what}: '{p.Key}' is not supported by SharpVmm");
    }
}
