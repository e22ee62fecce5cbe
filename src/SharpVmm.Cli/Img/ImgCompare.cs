using System.CommandLine;
using SharpVmm.Block;
using SharpVmm.Block.Operations;

namespace SharpVmm.Cli.Img;

/// <summary>compare with qemu-img's exit codes: 0 identical, 1 different, 2 error.</summary>
internal static class ImgCompare
{
    public static Command Build()
    {
        var fmtA = ImgRunner.FormatOption("-f", "first image's format");
        var fmtB = ImgRunner.FormatOption("-F", "second image's format");
        var strict = ImgRunner.Flag("-s", "strict: images of different sizes differ");
        var progress = ImgRunner.Flag("-p", "show progress");
        var quiet = ImgRunner.Flag("-q", "quiet");
        var force = ImgRunner.Flag("-U", "open even if in use", "--force-share");
        var a = new Argument<string>("filename1");
        var b = new Argument<string>("filename2");
        var cmd = new Command("compare", "Check whether two images have the same contents") { fmtA, fmtB, strict, progress, quiet, force, a, b };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            using var ia = ImageFactory.Open(pr.GetValue(a)!, new ImageOpenOptions { Format = pr.GetValue(fmtA), ReadOnly = true, ForceShare = pr.GetValue(force) });
            using var ib = ImageFactory.Open(pr.GetValue(b)!, new ImageOpenOptions { Format = pr.GetValue(fmtB) ?? pr.GetValue(fmtA), ReadOnly = true, ForceShare = pr.GetValue(force) });
            var quietOn = pr.GetValue(quiet);
            var bar = pr.GetValue(progress) && !quietOn ? new ProgressBar(o) : null;
            if (ia.Size != ib.Size && !quietOn && !pr.GetValue(strict)) o.WriteLine("Warning: Image size mismatch!");
            var diff = ImageCompare.FirstDifference(ia, ib, pr.GetValue(strict), bar == null ? null : bar.Report);
            bar?.Done();
            if (diff < 0)
            {
                if (!quietOn) o.WriteLine("Images are identical.");
                return 0;
            }
            if (!quietOn)
                o.WriteLine(pr.GetValue(strict) && ia.Size != ib.Size ? "Strict mode: Image size mismatch!" : $"Content mismatch at offset {diff}!");
            return 1;
        }, errorCode: 2));
        return cmd;
    }
}
