using System.CommandLine;
using SharpVmm.Block;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Img;

internal static class ImgCreate
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption("-f", "image format: raw (default) or qcow2");
        var opts = new Option<string[]>("-o") { Description = "format options: cluster_size, compat, lazy_refcounts, refcount_bits, preallocation, compression_type, backing_file, backing_fmt", AllowMultipleArgumentsPerToken = false };
        var backing = new Option<string>("-b") { Description = "backing file (the new image is a copy-on-write overlay)" };
        var backingFmt = new Option<string>("-F") { Description = "backing file format" };
        var quiet = ImgRunner.Flag("-q", "quiet");
        var unsafeOpt = ImgRunner.Flag("-u", "do not open the backing file (a size must be given)");
        var file = ImgRunner.FileArgument();
        var size = new Argument<string?>("size") { Description = "virtual size, e.g. 10G (taken from the backing file when omitted)", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("create", "Create a new image") { fmt, opts, backing, backingFmt, quiet, unsafeOpt, file, size };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var format = pr.GetValue(fmt) ?? "raw";
            var co = CreateOptionParser.Parse(pr.GetValue(opts), new CreateOptions());
            var b = pr.GetValue(backing) ?? co.BackingFile;
            var bf = pr.GetValue(backingFmt) ?? co.BackingFormat;
            co = co with { BackingFile = b, BackingFormat = bf };
            var path = pr.GetValue(file)!;
            long bytes;
            var sizeText = pr.GetValue(size);
            if (sizeText != null) bytes = SizeParser.ParseBytes(sizeText);
            else if (b != null && !pr.GetValue(unsafeOpt))
            {
                var bp = Path.IsPathRooted(b) ? b : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", b);
                using var bi = ImageFactory.Open(bp, new ImageOpenOptions { Format = bf, ReadOnly = true });
                bytes = bi.Size;
                co = co with { BackingFormat = bf ?? bi.FormatName };
            }
            else throw new ArgumentException("an image size is required (e.g. 'sharpvmm img create -f qcow2 disk.qcow2 10G')");
            if (b != null && format != "qcow2") throw new ArgumentException($"the {format} format does not support backing files");
            if (b != null && co.BackingFormat == null && !pr.GetValue(unsafeOpt))
            {
                var bp = Path.IsPathRooted(b) ? b : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", b);
                co = co with { BackingFormat = ImageFactory.Probe(bp) };
            }
            if (!pr.GetValue(quiet))
            {
                var desc = format == "qcow2"
                    ? $"fmt=qcow2 cluster_size={co.ClusterSize} extended_l2=off compression_type={co.CompressionType} size={bytes}" +
                      (b != null ? $" backing_file={b} backing_fmt={co.BackingFormat}" : "") +
                      $" lazy_refcounts={(co.LazyRefcounts ? "on" : "off")} refcount_bits={co.RefcountBits}"
                    : $"fmt=raw size={bytes}";
                o.WriteLine($"Formatting '{path}', {desc}");
            }
            using var img = ImageFactory.Create(path, format, bytes, co);
            return 0;
        }));
        return cmd;
    }
}
