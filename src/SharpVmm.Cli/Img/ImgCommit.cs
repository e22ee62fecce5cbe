using System.CommandLine;
using SharpVmm.Block.Operations;

namespace SharpVmm.Cli.Img;

internal static class ImgCommit
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption();
        var keep = ImgRunner.Flag("-d", "do not empty the image after committing");
        var progress = ImgRunner.Flag("-p", "show progress");
        var quiet = ImgRunner.Flag("-q", "quiet");
        var file = ImgRunner.FileArgument();
        var cmd = new Command("commit", "Write an overlay's changes into its backing file") { fmt, keep, progress, quiet, file };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var bar = pr.GetValue(progress) && !pr.GetValue(quiet) ? new ProgressBar(o) : null;
            ImageChain.Commit(pr.GetValue(file)!, pr.GetValue(keep), bar == null ? null : bar.Report);
            bar?.Done();
            if (!pr.GetValue(quiet)) o.WriteLine("Image committed.");
            return 0;
        }));
        return cmd;
    }
}
