namespace SharpVmm.Cli.Qemu;

/// <summary>
/// The CPU model names accepted by -cpu and listed by query-cpu-definitions. SharpVmm has one CPU model (its
/// emulator's, or the host's under KVM); these are the QEMU names for "the model the VMM provides".
/// </summary>
public static class QemuCpuModels
{
    /// <summary>qemu64 is the default libvirt writes for a domain without a CPU element; max and host name the same model here.</summary>
    public static readonly string[] Names = ["qemu64", "max", "host"];

    public static bool IsKnown(string name) => Array.IndexOf(Names, name) >= 0;

    /// <summary>QOM type name QEMU gives a CPU model (qemu64 -> qemu64-x86_64-cpu).</summary>
    public static string TypeName(string name) => name + "-x86_64-cpu";
}
