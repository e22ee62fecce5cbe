using SharpVmm.Core;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Config;

/// <summary>
/// <c>--memory SIZE[,merge=on|off][,hugepages=on|off][,prealloc=on|off]</c>: guest RAM's size and how the host backs it.
/// merge (KSM) is on unless turned off; huge pages and preallocation only when asked.
/// </summary>
public sealed record MemorySpec(ulong Bytes, GuestMemoryOptions Options)
{
    public const string Syntax = "SIZE[,merge=on|off][,hugepages=on|off][,prealloc=on|off]";

    public static MemorySpec Parse(string text)
    {
        var list = OptionList.WithHead(text);
        ulong bytes = SizeParser.Parse(list.Head);
        var options = new GuestMemoryOptions { Merge = true };
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value, _, p) in list.Items)
        {
            if (value is not ("on" or "off") || key is not ("merge" or "hugepages" or "prealloc"))
                throw new ConfigurationException($"--memory option '{p}' is not understood: use {Syntax}");
            if (!seen.Add(key)) throw new ConfigurationException($"--memory gives {key}= twice");
            bool on = value == "on";
            options = key switch
            {
                "merge" => options with { Merge = on },
                "hugepages" => options with { HugePages = on },
                _ => options with { Prealloc = on },
            };
        }
        return new MemorySpec(bytes, options);
    }
}
