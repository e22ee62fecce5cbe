using System.CommandLine;
using System.Globalization;
using System.Text;
using SharpVmm.Block;

namespace SharpVmm.Cli.Img;

internal static class ImgMap
{
    public static Command Build()
    {
        var fmt = ImgRunner.FormatOption();
        var output = new Option<string>("--output") { Description = "human (default) or json", DefaultValueFactory = _ => "human" };
        var start = new Option<long>("--start-offset", "-s") { Description = "first byte to map" };
        var maxLen = new Option<long?>("--max-length", "-l") { Description = "bytes to map" };
        var force = ImgRunner.Flag("-U", "open even if in use", "--force-share");
        var file = ImgRunner.FileArgument();
        var cmd = new Command("map", "Show which ranges of an image are allocated, zero, or taken from a backing file") { fmt, output, start, maxLen, force, file };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var path = pr.GetValue(file)!;
            using var img = ImageFactory.Open(path, new ImageOpenOptions { Format = pr.GetValue(fmt), ReadOnly = true, ForceShare = pr.GetValue(force) });
            var from = pr.GetValue(start);
            var end = pr.GetValue(maxLen) is { } l ? Math.Min(img.Size, from + l) : img.Size;
            var extents = Extents(img, from, end);
            o.Write(pr.GetValue(output) == "json" ? FormatJson(extents) : FormatHuman(extents));
            return 0;
        }));
        return cmd;
    }

    internal static List<BlockStatus> Extents(IBlockImage img, long from, long end)
    {
        var list = new List<BlockStatus>();
        var pos = from;
        while (pos < end)
        {
            var s = img.GetStatus(pos, Math.Min(end - pos, 1L << 30));
            if (s.Length <= 0) throw new InvalidOperationException($"allocation map stalled at offset {pos}");
            if (list.Count > 0)
            {
                var p = list[^1];
                var contiguous = !p.Has(BlockStatusFlags.OffsetValid) || p.HostOffset + p.Length == s.HostOffset;
                if (p.Flags == s.Flags && p.Depth == s.Depth && p.File == s.File && contiguous)
                {
                    list[^1] = p with { Length = p.Length + s.Length };
                    pos += s.Length;
                    continue;
                }
            }
            list.Add(s);
            pos += s.Length;
        }
        return list;
    }

    private static string FormatJson(List<BlockStatus> list)
    {
        var sb = new StringBuilder("[");
        for (var i = 0; i < list.Count; i++)
        {
            var s = list[i];
            if (i > 0) sb.Append(",\n");
            sb.Append(CultureInfo.InvariantCulture,
                $"{{ \"start\": {s.Offset}, \"length\": {s.Length}, \"depth\": {s.Depth}, \"present\": {B(s.Has(BlockStatusFlags.Present))}, \"zero\": {B(s.Has(BlockStatusFlags.Zero))}, \"data\": {B(s.Has(BlockStatusFlags.Data))}");
            if (s.Has(BlockStatusFlags.OffsetValid)) sb.Append(CultureInfo.InvariantCulture, $", \"offset\": {s.HostOffset}");
            sb.Append('}');
        }
        sb.Append("]\n");
        return sb.ToString();
        static string B(bool b) => b ? "true" : "false";
    }

    private static string FormatHuman(List<BlockStatus> list)
    {
        var sb = new StringBuilder("Offset          Length          Mapped to       File\n");
        foreach (var s in list)
            if (s.Has(BlockStatusFlags.Data) && s.Has(BlockStatusFlags.OffsetValid))
                sb.Append(CultureInfo.InvariantCulture, $"{Hex(s.Offset),-16}{Hex(s.Length),-16}{Hex(s.HostOffset),-16}{s.File}\n");
        return sb.ToString();
        static string Hex(long v) => v == 0 ? "0" : "0x" + v.ToString("x", CultureInfo.InvariantCulture);
    }
}
