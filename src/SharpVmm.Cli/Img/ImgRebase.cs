using System.CommandLine;
using SharpVmm.Block.Operations;

namespace SharpVmm.Cli.Img;

internal static class ImgRebase
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption();
        var backing = new Option<string>("-b") { Description = "new backing file (\"\" for none)", Required = true };
        var backingFmt = new Option<string>("-F") { Description = "new backing file format" };
        var unsafeOpt = ImgRunner.Flag("-u", "unsafe: only change the recorded name, copy nothing");
        var progress = ImgRunner.Flag("-p", "show progress");
        var quiet = ImgRunner.Flag("-q", "quiet");
        var file = ImgRunner.FileArgument();
        var cmd = new Command("rebase", "Change an overlay's backing file, keeping its contents (unless -u)") { fmt, backing, backingFmt, unsafeOpt, progress, quiet, file };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var bar = pr.GetValue(progress) && !pr.GetValue(quiet) ? new ProgressBar(o) : null;
            var b = pr.GetValue(backing);
            ImageChain.Rebase(pr.GetValue(file)!, string.IsNullOrEmpty(b) ? null : b, pr.GetValue(backingFmt), pr.GetValue(unsafeOpt), bar == null ? null : bar.Report);
            bar?.Done();
            return 0;
        }));
        return cmd;
    }
}
