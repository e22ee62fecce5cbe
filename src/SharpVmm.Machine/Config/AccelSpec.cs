using System.Globalization;
using SharpVmm.Core;

namespace SharpVmm.Machine.Config;

/// <summary>
/// <c>--accel kvm|emu|auto[,tb-size=MiB]</c>: the accelerator, and for emu the size of its decoded-code cache, named
/// after QEMU's <c>-accel tcg,tb-size=</c> (MiB; 0 = unbounded). Without it the emulator's default applies.
/// </summary>
public sealed record AccelSpec(AcceleratorKind Kind, long? CodeCacheBytes)
{
    public const string Syntax = "kvm|emu|auto[,tb-size=MiB]";

    public static AccelSpec Parse(string text)
    {
        var parts = text.Split(',');
        var kind = parts[0].ToLowerInvariant() switch
        {
            "kvm" => AcceleratorKind.Kvm,
            "emu" => AcceleratorKind.Emu,
            "auto" => AcceleratorKind.Auto,
            _ => throw new ConfigurationException($"--accel '{parts[0]}' is not an accelerator: use {Syntax}"),
        };
        long? cache = null;
        foreach (var p in parts[1..])
        {
            int eq = p.IndexOf('=');
            string key = eq < 0 ? p : p[..eq], value = eq < 0 ? "" : p[(eq + 1)..];
            if (key != "tb-size")
                throw new ConfigurationException($"--accel option '{p}' is not understood: use {Syntax}");
            if (cache is not null) throw new ConfigurationException("--accel gives tb-size= twice");
            if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long mib) || mib > 1L << 20)
                throw new ConfigurationException($"--accel tb-size '{value}' is not a size in MiB (0 to 1048576; 0 = unbounded)");
            if (kind == AcceleratorKind.Kvm)
                throw new ConfigurationException("--accel tb-size sizes the emulator's code cache: it does not apply to kvm");
            cache = mib << 20;
        }
        return new AccelSpec(kind, cache);
    }
}
