using System.Text;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// When the binary speaks QEMU: run as <c>sharpvmm qemu-system-x86_64 ARGS</c>, or under a name starting with
/// <c>qemu-system-x86_64</c> (a symlink next to the binary, which libvirt's &lt;emulator&gt; can point at).
/// </summary>
public static class QemuPersonality
{
    public const string SubcommandName = "qemu-system-x86_64";

    /// <summary>The QEMU arguments if this invocation is QEMU's, else null.</summary>
    public static string[]? Arguments(string[] args)
    {
        if (args.Length > 0 && args[0] == SubcommandName) return args[1..];
        string name = Path.GetFileName(InvokedName());
        return name.StartsWith(SubcommandName, StringComparison.Ordinal) || name == "qemu-kvm" ? args : null;
    }

    /// <summary>argv[0] as given (the runtime only offers the resolved executable, which a symlink hides).</summary>
    private static string InvokedName()
    {
        try
        {
            byte[] cmdline = File.ReadAllBytes("/proc/self/cmdline");
            int end = Array.IndexOf(cmdline, (byte)0);
            return Encoding.UTF8.GetString(cmdline, 0, end < 0 ? cmdline.Length : end);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
