using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;

namespace SharpVmm.Machine.Board;

public static partial class VmBuilder
{
    /// <summary>
    /// Added to a Linux guest's command line unless the user chose a reboot method. Linux on x86 picks its reboot
    /// method at boot: on a hardware-reduced ACPI platform it prefers EFI's ResetSystem, and, finding no EFI, falls
    /// back to jumping to the BIOS reset vector — there is no firmware behind it in a direct kernel boot, so the
    /// guest crashed (a triple fault, exit 2) instead of rebooting. <c>reboot=acpi</c> makes it write the FADT's
    /// RESET_REG, which the ACPI sleep device turns into a VM reset; the i8042 reset pulse, Linux's next method,
    /// resets too.
    /// </summary>
    public const string RebootOption = "reboot=acpi";

    /// <summary>
    /// QEMU's -no-reboot: a reset the guest asks for ends the run with exit code 0. Chained after any policy the
    /// builder already set (the panic watcher's), which keeps precedence.
    /// </summary>
    private static void ApplyRebootPolicy(VirtualMachine vm, VmConfig config)
    {
        if (!config.NoReboot) return;
        var earlier = vm.ResetPolicy;
        vm.ResetPolicy = () => earlier?.Invoke() ?? VmExitResult.GuestReset();
    }
}
