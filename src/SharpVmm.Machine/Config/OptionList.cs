using System.Text;

namespace SharpVmm.Machine.Config;

/// <summary>One <c>key=value</c> item of an option list; <see cref="Text"/> is the item as written, for errors.</summary>
public readonly record struct OptionItem(string Key, string Value, bool HasValue, string Text)
{
    public static OptionItem Of(string item)
    {
        int eq = item.IndexOf('=');
        return eq < 0 ? new(item, "", false, item) : new(item[..eq], item[(eq + 1)..], true, item);
    }
}

/// <summary>
/// The <c>[HEAD,]key=value,...</c> lists of <c>--disk</c>, <c>--net</c>, <c>--memory</c>, <c>--accel</c>,
/// <c>--device</c> and <c>img create -o</c>, in QEMU's option syntax: items are split at single commas, and a
/// doubled comma is a literal comma (so a path may hold one). What a key means, and which keys may repeat, is the
/// caller's business: this only splits.
/// </summary>
public sealed class OptionList
{
    private OptionList(string head, OptionItem[] items)
    {
        Head = head;
        Items = items;
    }

    /// <summary>The first item, taken whole (a path, a backend, a size); "" when the text is empty.</summary>
    public string Head { get; }

    /// <summary>The items after <see cref="Head"/>, empty ones included (callers refuse them as they refuse unknown keys).</summary>
    public IReadOnlyList<OptionItem> Items { get; }

    /// <summary>A list whose first item is positional.</summary>
    public static OptionList WithHead(string text)
    {
        var parts = SplitItems(text);
        var items = new OptionItem[parts.Count - 1];
        for (int i = 1; i < parts.Count; i++) items[i - 1] = OptionItem.Of(parts[i]);
        return new OptionList(parts[0], items);
    }

    /// <summary>A list of key=value items only (<c>img create -o</c>).</summary>
    public static IReadOnlyList<OptionItem> Parse(string text)
    {
        var parts = SplitItems(text);
        var items = new OptionItem[parts.Count];
        for (int i = 0; i < parts.Count; i++) items[i] = OptionItem.Of(parts[i]);
        return items;
    }

    /// <summary>The items between single commas, ",," read as a literal comma. Always at least one (maybe empty).</summary>
    public static List<string> SplitItems(string text)
    {
        var items = new List<string>();
        var current = new StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != ',') current.Append(text[i]);
            else if (i + 1 < text.Length && text[i + 1] == ',') { current.Append(','); i++; }
            else { items.Add(current.ToString()); current.Clear(); }
        }
        items.Add(current.ToString());
        return items;
    }
}
