using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Build;

/// <summary>
/// Resolves <c>--accel auto</c>. KVM is used when /dev/kvm can be opened, except for Linux kernels on a PVM host:
/// PVM's in-kernel emulator cannot boot an unmodified Linux (it lacks cmpxchg16b), so those go to the emulator.
/// </summary>
public static class AcceleratorChoice
{
    public static (AcceleratorKind Kind, string Why) Resolve(VmConfig config)
    {
        if (config.Accelerator != AcceleratorKind.Auto) return (config.Accelerator, "asked for on the command line");
        if (!KvmUsable(out string why)) return (AcceleratorKind.Emu, $"KVM is not usable here ({why})");
        if (config.Kernel is not null && IsPvmHost())
            return (AcceleratorKind.Emu, "this host's KVM is PVM, whose instruction emulator cannot boot Linux");
        return (AcceleratorKind.Kvm, "/dev/kvm is available");
    }

    public static bool IsPvmHost() => Directory.Exists("/sys/module/kvm_pvm");

    private static bool KvmUsable(out string why)
    {
        try
        {
            using var f = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            why = "";
            return true;
        }
        catch (FileNotFoundException) { why = "no /dev/kvm"; }
        catch (DirectoryNotFoundException) { why = "no /dev/kvm"; }
        catch (UnauthorizedAccessException) { why = "no permission to open /dev/kvm"; }
        catch (IOException ex) { why = ex.Message; }
        return false;
    }
}
