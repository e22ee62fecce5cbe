using SharpVmm.Kvm;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Board;

/// <summary>
/// Resolves <c>--accel auto</c>. KVM is used when /dev/kvm opens and speaks KVM's API, except for Linux kernels on a PVM host:
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

    /// <summary>
    /// KVM counts as usable when /dev/kvm opens and answers as KVM API 12 does (the same check the KVM accelerator
    /// makes), so a host without the device, without permission, or with something else at that path picks emu and
    /// says which of these it was.
    /// </summary>
    private static bool KvmUsable(out string why)
    {
        try
        {
            using var kvm = KvmSystem.Open();
            why = "";
            return true;
        }
        catch (KvmException e)
        {
            why = e.Kind switch
            {
                KvmErrorKind.NoDevice => "no /dev/kvm",
                KvmErrorKind.NoPermission => "no permission to open /dev/kvm",
                _ => e.Message,
            };
            return false;
        }
    }
}
