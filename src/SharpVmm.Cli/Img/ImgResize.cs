using System.CommandLine;
using SharpVmm.Block;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Img;

internal static class ImgResize
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption();
        var shrink = ImgRunner.Flag("--shrink", "allow the image to get smaller (data past the new end is lost)");
        var quiet = ImgRunner.Flag("-q", "quiet");
        var file = ImgRunner.FileArgument();
        var size = new Argument<string>("size") { Description = "new size, or +SIZE / -SIZE relative to the current one (use -- before a negative size)" };
        var cmd = new Command("resize", "Change an image's virtual size") { fmt, shrink, quiet, file, size };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            using var img = ImageFactory.Open(pr.GetValue(file)!, new ImageOpenOptions { Format = pr.GetValue(fmt) });
            var text = pr.GetValue(size)!;
            var newSize = text[0] switch
            {
                '+' => img.Size + SizeParser.ParseBytes(text[1..]),
                '-' => img.Size - SizeParser.ParseBytes(text[1..]),
                _ => SizeParser.ParseBytes(text),
            };
            if (newSize < 0) throw new ArgumentException("the new size would be negative");
            if (newSize < img.Size && !pr.GetValue(shrink))
                throw new ArgumentException("use the --shrink option to shrink an image (data past the new size is lost)");
            img.Resize(newSize, pr.GetValue(shrink));
            img.Flush();
            if (!pr.GetValue(quiet)) o.WriteLine("Image resized.");
            return 0;
        }));
        return cmd;
    }
}
