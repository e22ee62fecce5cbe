using System.Globalization;
using SharpVmm.Core;

namespace SharpVmm.Machine.Config;

/// <summary>
/// <c>--accel kvm|emu|auto[,tb-size=MiB][,jit=on|off|forced][,jit-threshold=N][,hypervisor=on|off]</c>: the accelerator,
/// and for emu the size of its decoded-code cache, named after QEMU's <c>-accel tcg,tb-size=</c> (MiB; 0 = unbounded),
/// whether (and after how many executions) it translates hot blocks to host code, and whether its CPUID shows the
/// hypervisor leaves (EmuOptions.HypervisorLeaves). Without them the emulator's defaults apply.
/// </summary>
public sealed record AccelSpec(AcceleratorKind Kind, long? CodeCacheBytes)
{
    public const string Syntax = "kvm|emu|auto[,tb-size=MiB][,jit=on|off|forced][,jit-threshold=N][,hypervisor=on|off]";

    /// <summary>The emulator's second tier (<c>jit=</c>); null = its default.</summary>
    public Emulator.JitMode? Jit { get; init; }

    /// <summary>Executions before a block is translated (<c>jit-threshold=</c>); null = the default.</summary>
    public int? JitThreshold { get; init; }

    /// <summary>The emulator's hypervisor CPUID leaves (<c>hypervisor=</c>); null = its default (on).</summary>
    public bool? HypervisorLeaves { get; init; }

    public static AccelSpec Parse(string text)
    {
        var list = OptionList.WithHead(text);
        var kind = list.Head.ToLowerInvariant() switch
        {
            "kvm" => AcceleratorKind.Kvm,
            "emu" => AcceleratorKind.Emu,
            "auto" => AcceleratorKind.Auto,
            _ => throw new ConfigurationException($"--accel '{list.Head}' is not an accelerator: use {Syntax}"),
        };
        long? cache = null;
        Emulator.JitMode? jit = null;
        int? threshold = null;
        bool? hypervisor = null;
        foreach (var (key, value, _, p) in list.Items)
        {
            switch (key)
            {
                case "tb-size":
                    if (cache is not null) throw new ConfigurationException("--accel gives tb-size= twice");
                    if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long mib) || mib > 1L << 20)
                        throw new ConfigurationException($"--accel tb-size '{value}' is not a size in MiB (0 to 1048576; 0 = unbounded)");
                    cache = mib << 20;
                    break;
                case "jit":
                    if (jit is not null) throw new ConfigurationException("--accel gives jit= twice");
                    jit = value.ToLowerInvariant() switch
                    {
                        "on" => Emulator.JitMode.On,
                        "off" => Emulator.JitMode.Off,
                        "forced" => Emulator.JitMode.Forced,
                        _ => throw new ConfigurationException($"--accel jit '{value}' is not on, off or forced"),
                    };
                    break;
                case "jit-threshold":
                    if (threshold is not null) throw new ConfigurationException("--accel gives jit-threshold= twice");
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1)
                        throw new ConfigurationException($"--accel jit-threshold '{value}' is not a count of executions (1 or more)");
                    threshold = n;
                    break;
                case "hypervisor":
                    if (hypervisor is not null) throw new ConfigurationException("--accel gives hypervisor= twice");
                    hypervisor = value.ToLowerInvariant() switch
                    {
                        "on" => true,
                        "off" => false,
                        _ => throw new ConfigurationException($"--accel hypervisor '{value}' is not on or off"),
                    };
                    break;
                default:
                    throw new ConfigurationException($"--accel option '{p}' is not understood: use {Syntax}");
            }
            if (kind == AcceleratorKind.Kvm)
                throw new ConfigurationException($"--accel {key} configures the emulator: it does not apply to kvm");
        }
        return new AccelSpec(kind, cache) { Jit = jit, JitThreshold = threshold, HypervisorLeaves = hypervisor };
    }
}
