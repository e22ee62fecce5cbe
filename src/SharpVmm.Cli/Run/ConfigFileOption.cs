using System.CommandLine;
using System.CommandLine.Parsing;

namespace SharpVmm.Cli.Run;

/// <summary>
/// <c>--config FILE</c>: the whole VM in one JSON file with the command's own options
/// (<c>{"memory": "512M", "cpus": 2, "disk": ["a.qcow2,format=qcow2"], "rng": true}</c> reads as
/// <c>--memory 512M --cpus 2 --disk a.qcow2,format=qcow2 --rng</c>). The keys come from the command's option list
/// at parse time, so an option added to the command is a config key with no change here. Options on the command
/// line beside <c>--config</c> replace the file's (a repeatable option's whole list). Problems with the file are
/// parse errors naming the key, so the CLI reports them as it reports any bad argument (one line, exit 2).
/// </summary>
public sealed class ConfigFileOption : Option<string?>
{
    private readonly Command _command;

    private ConfigFileOption(Command command) : base("--config")
    {
        _command = command;
        HelpName = "FILE";
        Description = "Read options from a JSON object whose keys are these options without '--', e.g. "
            + "{\"memory\": \"512M\", \"cpus\": 2, \"disk\": [\"vm.qcow2\"], \"rng\": true}; "
            + "options on the command line win; relative paths in the file are relative to the file's directory";
    }

    /// <summary>Adds <c>--config</c> to <paramref name="command"/>; the file is checked while the command line is parsed.</summary>
    public static ConfigFileOption AddTo(Command command)
    {
        var option = new ConfigFileOption(command);
        command.Add(option);
        command.Validators.Add(result =>
        {
            try { option.Merge(result); }
            catch (ConfigFileException ex) { result.AddError(ex.Message); }
        });
        return option;
    }

    /// <summary>
    /// The parse of the command line with the config file's options added (those given on the command line kept),
    /// read with the same option objects, so <c>GetValue</c> works on it as on <paramref name="parsed"/>.
    /// Returns <paramref name="parsed"/> itself when no <c>--config</c> was given.
    /// </summary>
    public ParseResult Apply(ParseResult parsed)
    {
        var cr = parsed.GetResult(_command) ?? throw new ArgumentException($"the parse is not of '{_command.Name}'", nameof(parsed));
        return Merge(cr) ?? parsed;
    }

    private ParseResult? Merge(CommandResult result)
    {
        if (result.GetValue(this) is not { } path) return null;
        var options = new List<Option>();
        foreach (var o in _command.Options)
            if (o != this) options.Add(o);

        // The command line as typed, minus --config, re-spelled as --name=value so no value reads as an option.
        var tokens = new List<string>();
        foreach (var t in result.Tokens) tokens.Add(t.Value);
        var given = new HashSet<Option>();
        foreach (var child in result.Children)
        {
            if (child is not OptionResult { Implicit: false } r || r.Option == this) continue;
            given.Add(r.Option);
            if (r.Tokens.Count == 0) tokens.Add(r.Option.Name);
            foreach (var t in r.Tokens) tokens.Add($"{r.Option.Name}={t.Value}");
        }

        var settings = ConfigFileReader.Read(path, options, given.Contains);
        foreach (var s in settings) tokens.Add(s.Token);

        // Values from the file are not response files, whatever they start with.
        var merged = _command.Parse(tokens, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (merged.Errors.Count == 0) return merged;
        var error = merged.Errors[0];
        string message = string.Join(' ', error.Message.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        for (var s = error.SymbolResult; s is not null; s = s.Parent)
        {
            if (s is OptionResult { Option: var o } && !given.Contains(o) && settings.Exists(x => x.Option == o))
                throw new ConfigFileException($"{path}: \"{ConfigFileReader.KeyOf(o)}\": {message}");
        }
        throw new ConfigFileException($"{path}: {message}");
    }
}
