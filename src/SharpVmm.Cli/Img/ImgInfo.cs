using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpVmm.Block;
using SharpVmm.Block.Qcow2;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Img;

internal static class ImgInfo
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption();
        var output = new Option<string>("--output") { Description = "human (default) or json", DefaultValueFactory = _ => "human" };
        var force = ImgRunner.Flag("-U", "open even if the image is in use", "--force-share");
        var chain = ImgRunner.Flag("--backing-chain", "show every image of the backing chain, top first");
        var file = ImgRunner.FileArgument();
        var cmd = new Command("info", "Show an image's format, sizes, backing file and snapshots") { fmt, output, force, chain, file };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var path = pr.GetValue(file)!;
            var json = pr.GetValue(output) switch
            {
                "json" => true,
                "human" or null => false,
                var x => throw new ArgumentException($"--output must be human or json, not '{x}'"),
            };
            if (!pr.GetValue(chain))
            {
                using var img = ImageFactory.Open(path, new ImageOpenOptions { Format = pr.GetValue(fmt), ReadOnly = true, OpenBacking = false, ForceShare = pr.GetValue(force) });
                if (json) o.WriteLine(JsonInfo(path, img));
                else o.Write(HumanInfo(path, img));
                return 0;
            }
            var images = OpenChain(path, pr.GetValue(fmt), pr.GetValue(force));
            try
            {
                if (json)
                    o.WriteLine(Json.Write(w =>
                    {
                        w.WriteStartArray();
                        foreach (var (p, img) in images) WriteInfo(w, p, img);
                        w.WriteEndArray();
                    }));
                else o.Write(string.Join("\n", images.Select(x => HumanInfo(x.Path, x.Image))));
            }
            finally
            {
                foreach (var (_, img) in images) img.Dispose();
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// The image and each backing file below it, each opened alone, named as qemu-img names them (the backing file name
    /// resolved against the directory of the image that refers to it). A chain that loops is an error, as in qemu-img.
    /// </summary>
    private static List<(string Path, IBlockImage Image)> OpenChain(string path, string? format, bool forceShare)
    {
        var images = new List<(string, IBlockImage)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            while (true)
            {
                if (!seen.Add(Path.GetFullPath(path)))
                    throw new BlockImageException($"backing file '{path}' creates an infinite loop in the backing chain");
                var img = ImageFactory.Open(path, new ImageOpenOptions { Format = format, ReadOnly = true, OpenBacking = false, ForceShare = forceShare });
                images.Add((path, img));
                if (img is not Qcow2Image { BackingFileName: { } backing } q) return images;
                path = FullBacking(path, backing);
                format = q.BackingFormat;
            }
        }
        catch
        {
            foreach (var (_, img) in images) img.Dispose();
            throw;
        }
    }

    internal static string FullBacking(string path, string backing) =>
        Path.IsPathRooted(backing) ? backing : Path.Combine(Path.GetDirectoryName(path) is { Length: > 0 } d ? d : "", backing);

    private static string JsonInfo(string path, IBlockImage img) => Json.Write(w => WriteInfo(w, path, img));

    private static void WriteInfo(Utf8JsonWriter w, string path, IBlockImage img)
    {
        var q = img as Qcow2Image;
        w.WriteStartObject();
        if (q is { BackingFormat: not null }) w.WriteString("backing-filename-format", q.BackingFormat);
        if (q is { Snapshots.Count: > 0 })
        {
            w.WriteStartArray("snapshots");
            foreach (var s in q.Snapshots)
            {
                w.WriteStartObject();
                w.WriteNumber("icount", s.Icount ?? 0);
                w.WriteNumber("vm-clock-nsec", s.VmClockNanoseconds % 1_000_000_000);
                w.WriteString("name", s.Name);
                w.WriteNumber("date-sec", s.DateSeconds);
                w.WriteNumber("date-nsec", s.DateNanoseconds);
                w.WriteNumber("vm-clock-sec", s.VmClockNanoseconds / 1_000_000_000);
                w.WriteString("id", s.Id);
                w.WriteNumber("vm-state-size", s.VmStateSize);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteNumber("virtual-size", img.Size);
        w.WriteString("filename", path);
        if (q != null) w.WriteNumber("cluster-size", q.ClusterSize);
        w.WriteString("format", img.FormatName);
        w.WriteNumber("actual-size", img.ActualSize);
        if (q != null)
        {
            w.WriteStartObject("format-specific");
            w.WriteString("type", "qcow2");
            w.WriteStartObject("data");
            w.WriteString("compat", q.Version == 2 ? "0.10" : "1.1");
            if (q.Version >= 3)
            {
                w.WriteString("compression-type", q.CompressionType);
                w.WriteBoolean("lazy-refcounts", q.LazyRefcounts);
            }
            w.WriteNumber("refcount-bits", q.RefcountBits);
            w.WriteBoolean("corrupt", q.IsCorrupt);
            if (q.Version >= 3) w.WriteBoolean("extended-l2", q.ExtendedL2);
            w.WriteEndObject();
            w.WriteEndObject();
            if (q.BackingFileName != null)
            {
                w.WriteString("full-backing-filename", FullBacking(path, q.BackingFileName));
                w.WriteString("backing-filename", q.BackingFileName);
            }
            w.WriteBoolean("dirty-flag", q.IsDirty);
        }
        else w.WriteBoolean("dirty-flag", false);
        w.WriteEndObject();
    }

    private static string HumanInfo(string path, IBlockImage img)
    {
        var q = img as Qcow2Image;
        var sb = new System.Text.StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"image: {path}\n");
        sb.Append(CultureInfo.InvariantCulture, $"file format: {img.FormatName}\n");
        sb.Append(CultureInfo.InvariantCulture, $"virtual size: {SizeParser.Human(img.Size)} ({img.Size} bytes)\n");
        sb.Append(CultureInfo.InvariantCulture, $"disk size: {SizeParser.Human(img.ActualSize)}\n");
        if (q == null) return sb.ToString();
        sb.Append(CultureInfo.InvariantCulture, $"cluster_size: {q.ClusterSize}\n");
        if (q.BackingFileName != null)
        {
            var full = FullBacking(path, q.BackingFileName);
            sb.Append(CultureInfo.InvariantCulture, $"backing file: {q.BackingFileName}{(full != q.BackingFileName ? $" (actual path: {full})" : "")}\n");
            if (q.BackingFormat != null) sb.Append(CultureInfo.InvariantCulture, $"backing file format: {q.BackingFormat}\n");
        }
        if (q.Snapshots.Count > 0)
        {
            sb.Append("Snapshot list:\n");
            ImgSnapshot.AppendList(sb, q.Snapshots);
        }
        sb.Append("Format specific information:\n");
        sb.Append(CultureInfo.InvariantCulture, $"    compat: {(q.Version == 2 ? "0.10" : "1.1")}\n");
        if (q.Version >= 3)
        {
            sb.Append(CultureInfo.InvariantCulture, $"    compression type: {q.CompressionType}\n");
            sb.Append(CultureInfo.InvariantCulture, $"    lazy refcounts: {(q.LazyRefcounts ? "true" : "false")}\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"    refcount bits: {q.RefcountBits}\n");
        sb.Append(CultureInfo.InvariantCulture, $"    corrupt: {(q.IsCorrupt ? "true" : "false")}\n");
        if (q.Version >= 3) sb.Append(CultureInfo.InvariantCulture, $"    extended l2: {(q.ExtendedL2 ? "true" : "false")}\n");
        return sb.ToString();
    }
}
