using SharpVmm.Block;
using SharpVmm.Core;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Run;

/// <summary>
/// The checks on <c>run</c>'s values that need no VM: every file argument is of the kind it must be (regular file, or
/// block device for a disk) before anything opens it, since opening a FIFO blocks and reading /dev/zero never ends,
/// and every UNIX socket path fits a socket address and replaces nothing but a stale socket. A failure is a bad
/// command line (exit 2).
/// </summary>
internal static class CommandLineChecks
{
    public static void Check(VmConfig config, string? restore, string? qmp)
    {
        config.Validate();
        File(config.Kernel, "--kernel");
        File(config.Initrd, "--initrd");
        File(config.Flat?.Path, "--flat");
        File(restore, "--restore");
        foreach (var d in config.Disks)
            if (HostFile.Problem(d.Path, "--disk", blockDeviceOk: true) is { } p) throw new ConfigurationException(p);
        Socket(config.Serial, "--serial");
        Socket(config.Console, "--console");
        if (qmp is not null && !qmp.StartsWith("tcp:", StringComparison.Ordinal)) Socket(qmp.StartsWith("unix:", StringComparison.Ordinal) ? qmp : "unix:" + qmp, "--qmp");
    }

    private static void File(string? path, string option)
    {
        if (path is not null && HostFile.Problem(path, option) is { } p) throw new ConfigurationException(p);
    }

    private static void Socket(string? spec, string option)
    {
        if (spec is null || !spec.StartsWith("unix:", StringComparison.Ordinal)) return;
        if (HostFile.SocketPathProblem(spec[5..], option) is { } p) throw new ConfigurationException(p);
    }
}
