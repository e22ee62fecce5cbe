namespace SharpVmm.Testing;

// Compiled into test projects that drive SharpVmm through a real libvirtd (linked from tests/Shared).

/// <summary>
/// A fact that needs libvirt's QEMU driver on this machine: root (libvirtd runs as root and must exec the emulator
/// as libvirt-qemu), libvirtd/virtlogd/virsh installed (scripts/setup.sh installs them) and SharpVmm's native
/// binary (libvirt's scrubbed environment has no .NET runtime to run the JIT build). Skipped with the reason otherwise.
/// </summary>
public sealed class LibvirtFactAttribute : FactAttribute
{
    public LibvirtFactAttribute()
    {
        if (!LibvirtAvailable.Check(out string why)) Skip = why;
    }
}

internal static class LibvirtAvailable
{
    public static bool Check(out string why)
    {
        why = "";
        if (Environment.UserName != "root") why = "libvirt tests need root (libvirtd runs the emulator as libvirt-qemu)";
        else if (!File.Exists("/usr/sbin/libvirtd") || !File.Exists("/usr/sbin/virtlogd") || !File.Exists("/usr/bin/virsh"))
            why = "libvirt is not installed (scripts/setup.sh installs libvirt-daemon-system and libvirt-clients)";
        else if (NativeBinary() is null)
            why = "no native sharpvmm binary (scripts/publish.sh builds artifacts/bin/sharpvmm, or set SHARPVMM_BIN): libvirt runs the emulator with a scrubbed environment, without the .NET runtime";
        return why.Length == 0;
    }

    /// <summary>SHARPVMM_BIN, else artifacts/bin/sharpvmm of the repository the tests were built from.</summary>
    public static string? NativeBinary()
    {
        string? env = Environment.GetEnvironmentVariable("SHARPVMM_BIN");
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
        return RepoRoot() is { } root && File.Exists(Path.Combine(root, "artifacts", "bin", "sharpvmm"))
            ? Path.Combine(root, "artifacts", "bin", "sharpvmm") : null;
    }

    public static string? RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "SharpVmm.slnx"))) return d.FullName;
        return null;
    }
}
