using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpVmm.Block;
using SharpVmm.Block.Qcow2;

namespace SharpVmm.Cli.Img;

/// <summary>check with qemu-img's exit codes: 0 clean, 1 check failed, 2 corruption, 3 leaks only, 63 format has no check.</summary>
internal static class ImgCheck
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption();
        var repair = new Option<string>("-r") { Description = "repair: leaks or all" };
        var output = new Option<string>("--output") { Description = "human (default) or json", DefaultValueFactory = _ => "human" };
        var quiet = ImgRunner.Flag("-q", "quiet");
        var force = ImgRunner.Flag("-U", "open even if in use", "--force-share");
        var file = ImgRunner.FileArgument();
        var cmd = new Command("check", "Check a qcow2 image for consistency (and repair it with -r)") { fmt, repair, output, quiet, force, file };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var path = pr.GetValue(file)!;
            var format = pr.GetValue(fmt) ?? ImageFactory.Probe(path);
            if (format != "qcow2")
            {
                e.WriteLine("sharpvmm img: This image format does not support checks");
                return 63;
            }
            var mode = pr.GetValue(repair) switch
            {
                null => CheckRepair.None,
                "leaks" => CheckRepair.Leaks,
                "all" => CheckRepair.All,
                var x => throw new ArgumentException($"-r must be leaks or all, not '{x}'"),
            };
            var json = pr.GetValue(output) == "json";
            var r = ImageCheck.Run(path, mode, pr.GetValue(force));
            if (json) o.WriteLine(Json.Write(w => WriteJson(w, path, r)));
            else if (!pr.GetValue(quiet)) WriteHuman(o, e, r);
            var corrupt = r.Corruptions - (mode == CheckRepair.None ? 0 : 0);
            if (r.CheckErrors > 0) return 1;
            if (corrupt > 0) return 2;
            if (r.Leaks > 0) return 3;
            return 0;
        }));
        return cmd;
    }

    private static void WriteJson(Utf8JsonWriter w, string path, CheckResult r)
    {
        w.WriteStartObject();
        w.WriteNumber("image-end-offset", r.ImageEndOffset);
        w.WriteNumber("total-clusters", r.TotalClusters);
        w.WriteNumber("check-errors", r.CheckErrors);
        if (r.Leaks > 0) w.WriteNumber("leaks", r.Leaks);
        if (r.Corruptions > 0) w.WriteNumber("corruptions", r.Corruptions);
        if (r.LeaksFixed > 0) w.WriteNumber("leaks-fixed", r.LeaksFixed);
        if (r.CorruptionsFixed > 0) w.WriteNumber("corruptions-fixed", r.CorruptionsFixed);
        w.WriteNumber("allocated-clusters", r.AllocatedClusters);
        w.WriteString("filename", path);
        w.WriteString("format", "qcow2");
        if (r.FragmentedClusters > 0) w.WriteNumber("fragmented-clusters", r.FragmentedClusters);
        if (r.CompressedClusters > 0) w.WriteNumber("compressed-clusters", r.CompressedClusters);
        w.WriteEndObject();
    }

    private static void WriteHuman(TextWriter o, TextWriter e, CheckResult r)
    {
        foreach (var m in r.Messages) e.WriteLine(m);
        if (r.LeaksFixed > 0 || r.CorruptionsFixed > 0)
        {
            o.WriteLine("The following inconsistencies were found and repaired:\n");
            o.WriteLine($"    {r.LeaksFixed} leaked clusters");
            o.WriteLine($"    {r.CorruptionsFixed} corruptions\n");
            o.WriteLine("Double checking the fixed image now...");
        }
        if (r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0) o.WriteLine("No errors were found on the image.");
        else
        {
            if (r.Corruptions > 0)
                o.WriteLine($"\n{r.Corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.");
            if (r.Leaks > 0)
                o.WriteLine($"\n{r.Leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.");
        }
        if (r.TotalClusters > 0)
        {
            double Pct(long n) => 100.0 * n / r.TotalClusters;
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.AllocatedClusters}/{r.TotalClusters} = {Pct(r.AllocatedClusters):0.00}% allocated, {(r.AllocatedClusters == 0 ? 0 : 100.0 * r.FragmentedClusters / r.AllocatedClusters):0.00}% fragmented, {(r.AllocatedClusters == 0 ? 0 : 100.0 * r.CompressedClusters / r.AllocatedClusters):0.00}% compressed clusters"));
        }
        o.WriteLine($"Image end offset: {r.ImageEndOffset}");
    }
}
