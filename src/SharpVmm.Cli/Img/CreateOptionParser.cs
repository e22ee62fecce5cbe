using SharpVmm.Block;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Img;

/// <summary>Parses qemu-img's "-o key=value,key=value" into create options.</summary>
internal static class CreateOptionParser
{
    public static CreateOptions Parse(IEnumerable<string>? optionLists, CreateOptions start)
    {
        var o = start;
        if (optionLists == null) return o;
        foreach (var list in optionLists)
        foreach (var item in OptionList.Parse(list))
        {
            if (item.Text.Length == 0) continue;
            var key = item.Key.Trim();
            var value = item.HasValue ? item.Value.Trim() : "on";
            o = key switch
            {
                "cluster_size" => o with { ClusterSize = (int)SizeParser.ParseBytes(value) },
                "compat" => o with { Compat = value == "v3" ? "1.1" : value == "v2" ? "0.10" : value },
                "lazy_refcounts" => o with { LazyRefcounts = Bool(key, value) },
                "refcount_bits" => o with { RefcountBits = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
                "preallocation" => o with
                {
                    Preallocation = value switch
                    {
                        "off" => Preallocation.Off,
                        "metadata" => Preallocation.Metadata,
                        "falloc" => Preallocation.Falloc,
                        "full" => Preallocation.Full,
                        _ => throw new FormatException($"preallocation '{value}' is invalid: use off, metadata, falloc or full"),
                    },
                },
                "backing_file" => o with { BackingFile = value },
                "backing_fmt" => o with { BackingFormat = value },
                "compression_type" => o with { CompressionType = value },
                "extended_l2" => o with { ExtendedL2 = Bool(key, value) },
                "size" => o,
                _ => throw new FormatException($"unknown create option '{key}' (supported: cluster_size, compat, lazy_refcounts, refcount_bits, preallocation, backing_file, backing_fmt, compression_type)"),
            };
        }
        return o;
    }

    private static bool Bool(string key, string v) => v switch
    {
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        _ => throw new FormatException($"option {key} takes on or off, not '{v}'"),
    };
}
