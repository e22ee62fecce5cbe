using System.CommandLine;
using SharpVmm.Block;

namespace SharpVmm.Cli.Img;

/// <summary>Runs a subcommand body and turns every expected failure into one line on stderr and a non-zero exit.</summary>
internal static class ImgRunner
{
    public static int Run(ParseResult pr, Func<TextWriter, TextWriter, int> body, int errorCode = 1)
    {
        var output = pr.InvocationConfiguration.Output;
        var error = pr.InvocationConfiguration.Error;
        try
        {
            return body(output, error);
        }
        catch (Exception e) when (e is BlockImageException or IOException or UnauthorizedAccessException or ArgumentException or FormatException or InvalidOperationException)
        {
            error.WriteLine($"sharpvmm img: {OneLine(e.Message)}");
            return errorCode;
        }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    public static Option<string> FormatOption(string name = "-f", string description = "image format (raw or qcow2); probed when omitted")
        => new(name) { Description = description };

    public static Option<bool> Flag(string name, string description, params string[] aliases)
        => new(name, aliases) { Description = description };

    public static Argument<string> FileArgument(string name = "filename") => new(name) { Description = "image file" };
}
