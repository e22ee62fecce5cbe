using SharpVmm.Core;

namespace SharpVmm.Machine.Config;

/// <summary>A virtio-blk disk: <c>--disk PATH[,format=raw|qcow2][,readonly=on|off][,iothread=on|off]</c>.</summary>
public sealed record DiskSpec(string Path, string? Format = null, bool ReadOnly = false)
{
    /// <summary>
    /// Whether requests are served on an I/O thread of the disk's own (the default) or on the notifying vCPU's
    /// thread (<c>iothread=off</c>, to compare the two: bench/virtio-blk-dd.sh).
    /// </summary>
    public bool IoThread { get; init; } = true;

    public static DiskSpec Parse(string text)
    {
        var list = OptionList.WithHead(text);
        if (list.Head.Length == 0) throw new ConfigurationException($"--disk '{text}' needs a path first: PATH[,format=raw|qcow2][,readonly=on]");
        string? format = null;
        bool readOnly = false, ioThread = true;
        foreach (var (key, value, _, p) in list.Items)
        {
            switch (key)
            {
                case "format" when value is "raw" or "qcow2":
                    format = value;
                    break;
                case "readonly" when value is "on" or "off":
                    readOnly = value == "on";
                    break;
                case "iothread" when value is "on" or "off":
                    ioThread = value == "on";
                    break;
                default:
                    throw new ConfigurationException($"--disk option '{p}' is not understood: use format=raw|qcow2, readonly=on|off and iothread=on|off");
            }
        }
        return new DiskSpec(list.Head, format, readOnly) { IoThread = ioThread };
    }
}
