using System.CommandLine;

namespace SharpVmm.Cli.Run;

/// <summary>
/// Finds the file paths inside an option's value so a config file's relative paths can be taken relative to the
/// file. Which part of a value is a path is read from the option's own help name, the same text <c>--help</c>
/// shows: each '|'-separated alternative that holds the placeholder FILE or PATH says where the path sits —
/// after a literal prefix (<c>file:PATH</c>, <c>unix:PATH</c>) and up to the separator that follows it
/// (<c>PATH[,format=...]</c> ends at the first ',', <c>FILE@ADDR</c> at the last '@'). Options added later get
/// the same treatment by naming their paths that way; nothing here lists options.
/// </summary>
public static class ConfigFilePaths
{
    private static readonly string[] Placeholders = ["FILE", "PATH"];

    private readonly record struct Rule(string Prefix, char? Terminator, bool OptionalSuffix);

    /// <summary><paramref name="value"/> with its path made absolute against <paramref name="baseDirectory"/> when the option's help name says it holds a relative one.</summary>
    public static string Resolve(Option option, string value, string baseDirectory)
    {
        if (option.HelpName is not { } help) return value;
        Rule? best = null;
        foreach (string alternative in help.Split('|'))
        {
            string alt = alternative.Trim();
            if (!alt.Contains("FILE", StringComparison.Ordinal) && !alt.Contains("PATH", StringComparison.Ordinal))
            {
                if (alt == value) return value; // a keyword alternative such as "stdio"
                continue;
            }
            if (ParseRule(alt) is not { } rule || !value.StartsWith(rule.Prefix, StringComparison.Ordinal)) continue;
            if (best is null || rule.Prefix.Length > best.Value.Prefix.Length) best = rule;
        }
        if (best is not { } r) return value;
        int start = r.Prefix.Length;
        int end = value.Length;
        if (r.Terminator is { } t)
        {
            int at = r.OptionalSuffix ? value.IndexOf(t, start) : value.LastIndexOf(t);
            if (at >= start) end = at;
        }
        string path = value[start..end];
        if (path.Length == 0 || Path.IsPathRooted(path)) return value;
        return value[..start] + Path.GetFullPath(Path.Combine(baseDirectory, path)) + value[end..];
    }

    private static Rule? ParseRule(string alternative)
    {
        int at = -1, length = 0;
        foreach (string p in Placeholders)
        {
            int i = alternative.IndexOf(p, StringComparison.Ordinal);
            if (i >= 0 && (at < 0 || i < at)) (at, length) = (i, p.Length);
        }
        string prefix = alternative[..at];
        // A prefix with a placeholder of its own (HOST:PATH) is not a literal we can match.
        foreach (char c in prefix)
            if (char.IsUpper(c)) return null;
        string rest = alternative[(at + length)..];
        bool optional = rest.StartsWith('[');
        string suffix = rest.TrimStart('[');
        return new Rule(prefix, suffix.Length > 0 ? suffix[0] : null, optional);
    }
}
