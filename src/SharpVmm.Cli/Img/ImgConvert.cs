using System.CommandLine;
using SharpVmm.Block;
using SharpVmm.Block.Operations;

namespace SharpVmm.Cli.Img;

internal static class ImgConvert
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption("-f", "source format (probed when omitted)");
        var outFmt = new Option<string>("-O") { Description = "output format: raw (default) or qcow2" };
        var opts = new Option<string[]>("-o") { Description = "output format options (as for create)" };
        var compress = ImgRunner.Flag("-c", "compress the output (qcow2)");
        var progress = ImgRunner.Flag("-p", "show progress");
        var quiet = ImgRunner.Flag("-q", "quiet");
        var workers = new Option<int>("-m") { Description = "parallel workers (default: 8 with -c, else 4)" };
        var outOfOrder = ImgRunner.Flag("-W", "allow out-of-order allocation in qcow2 output (raw output needs no order)");
        var force = ImgRunner.Flag("-U", "open even if in use", "--force-share");
        var backing = new Option<string>("-B") { Description = "create the output as an overlay of this backing file and copy only what the source's top image stores" };
        var backingFmt = new Option<string>("-F") { Description = "format of the -B backing file (probed when omitted)" };
        var noCreate = ImgRunner.Flag("-n", "write into the existing output image instead of creating it");
        var cache = new Option<string>("-t") { Description = "output cache mode: unsafe (default, as qemu-img: no flush) or writeback/writethrough/none (flush at the end)", DefaultValueFactory = _ => "unsafe" };
        var files = new Argument<string[]>("filenames") { Description = "source image and output image", Arity = new ArgumentArity(2, 2) };
        var cmd = new Command("convert", "Copy an image into a new image, possibly of another format, optionally compressed")
            { fmt, outFmt, opts, compress, progress, quiet, workers, outOfOrder, force, backing, backingFmt, noCreate, cache, files };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var f = pr.GetValue(files)!;
            var co = CreateOptionParser.Parse(pr.GetValue(opts), new CreateOptions());
            using var src = ImageFactory.Open(f[0], new ImageOpenOptions { Format = pr.GetValue(fmt), ReadOnly = true, ForceShare = pr.GetValue(force) });
            var bar = pr.GetValue(progress) && !pr.GetValue(quiet) ? new ProgressBar(o) : null;
            ImageConverter.Convert(src, f[1], new ConvertOptions
            {
                OutputFormat = pr.GetValue(outFmt) ?? "raw",
                Create = co,
                Compress = pr.GetValue(compress),
                Workers = Math.Max(0, pr.GetValue(workers)),
                OutOfOrder = pr.GetValue(outOfOrder),
                BackingFile = pr.GetValue(backing),
                BackingFormat = pr.GetValue(backingFmt) is { } bf ? bf : null,
                UseExistingTarget = pr.GetValue(noCreate),
                Progress = bar == null ? null : bar.Report,
                Durable = pr.GetValue(cache) switch
                {
                    "unsafe" => false,
                    "writeback" or "writethrough" or "none" or "directsync" => true,
                    var x => throw new ArgumentException($"-t must be unsafe, writeback, writethrough, none or directsync, not '{x}'"),
                },
            });
            bar?.Done();
            return 0;
        }));
        return cmd;
    }
}
