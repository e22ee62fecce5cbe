namespace SharpVmm.Kvm.Tests.Support;

/// <summary>A fact that compiles C against linux/kvm.h; skipped with the reason when gcc or the headers are missing.</summary>
public sealed class CProbeFactAttribute : FactAttribute
{
    public const string Header = "/usr/include/linux/kvm.h";

    public CProbeFactAttribute()
    {
        if (FindGcc() is null) Skip = "needs gcc (Debian package gcc) to compile the KVM layout probe";
        else if (!File.Exists(Header)) Skip = $"needs {Header} (Debian package linux-libc-dev) to compile the KVM layout probe";
    }

    public static string? FindGcc()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, "gcc");
            if (File.Exists(path)) return path;
        }
        return null;
    }
}
