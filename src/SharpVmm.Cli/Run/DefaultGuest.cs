using SharpVmm.Boot.Initramfs;
using SharpVmm.Core;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Run;

/// <summary>
/// What <c>sharpvmm run</c> boots when given nothing to boot: the Debian kernel and busybox initramfs that
/// <c>guest/setup.sh</c> prepares (in $SHARPVMM_GUEST_DIR, default ~/.cache/sharpvmm/guest), with a shell on the console.
/// </summary>
public static class DefaultGuest
{
    public static VmConfig Apply(VmConfig config)
    {
        string dir = GuestInitramfs.DefaultGuestDir;
        string kernel = Path.Combine(dir, "vmlinuz"), initrd = Path.Combine(dir, "initrd.gz");
        if (!File.Exists(kernel) || !File.Exists(initrd))
            throw new ConfigurationException($"no default guest in {dir}: run guest/setup.sh (or scripts/setup.sh) first, or give --kernel or --flat");
        return config with { Kernel = kernel, Initrd = initrd, Append = "console=ttyS0 quiet" };
    }
}
