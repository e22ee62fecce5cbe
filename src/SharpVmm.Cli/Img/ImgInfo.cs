using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpVmm.Block;
using SharpVmm.Block.Qcow2;

namespace SharpVmm.Cli.Img;

internal static class ImgInfo
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption();
        var output = new Option<string>("--output") { Description = "human (default) or json", DefaultValueFactory = _ => "human" };
        var force = ImgRunner.Flag("-U", "open even if the image is in use", "--force-share");
        var file = ImgRunner.FileArgument();
        var cmd = new Command("info", "Show an image's format, sizes, backing file and snapshots") { fmt, output, force, file };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var path = pr.GetValue(file)!;
            using var img = ImageFactory.Open(path, new ImageOpenOptions { Format = pr.GetValue(fmt), ReadOnly = true, OpenBacking = false });
            var json = pr.GetValue(output) switch
            {
                "json" => true,
                "human" or null => false,
                var x => throw new ArgumentException($"--output must be human or json, not '{x}'"),
            };
            if (json) o.WriteLine(JsonInfo(path, img));
            else o.Write(HumanInfo(path, img));
            return 0;
        }));
        return cmd;
    }

    internal static string FullBacking(string path, string backing) =>
        Path.IsPathRooted(backing) ? backing : Path.Combine(Path.GetDirectoryName(path) is { Length: > 0 } d ? d : "", backing);

    private static string JsonInfo(string path, IBlockImage img) => Json.Write(w =>
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
    });

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
