using System.Reflection;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// What query-version and the greeting report. The "qemu" triple names the QEMU release whose QMP dialect this
/// server follows (7.2, checked against qemu-system-x86_64 7.2), so QEMU-aware tools pick matching behaviour;
/// "package" says it is SharpVmm and which build.
/// </summary>
public sealed record QmpVersion(int Major, int Minor, int Micro, string Package)
{
    public static QmpVersion Default { get; } = new(7, 2, 0, "SharpVmm " + SharpVmmVersion());

    private static string SharpVmmVersion()
    {
        var asm = typeof(QmpVersion).Assembly;
        string? v = asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (v is null) return asm.GetName().Version?.ToString(3) ?? "0.0.0";
        int plus = v.IndexOf('+');
        return plus > 0 ? v[..plus] : v;
    }
}
