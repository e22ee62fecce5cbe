namespace SharpVmm.Machine.Lifecycle;

/// <summary>How a VM ended, and the process exit code <c>sharpvmm run</c> reports for it.</summary>
public sealed record VmExitResult(VmStopReason Reason, int ExitCode, string Message)
{
    public bool IsError => Reason is VmStopReason.InternalError or VmStopReason.DeviceError or VmStopReason.TripleFault or VmStopReason.GuestPanic;

    /// <summary>Exit codes: 0 clean poweroff/halt/host stop; the debug-exit code as given; 1 VMM or device error; 2 triple fault; 3 guest kernel panic.</summary>
    public static VmExitResult PowerOff(int exitCode) => new(VmStopReason.PowerOff, exitCode, exitCode == 0 ? "guest powered off" : $"guest exited with code {exitCode}");
    /// <summary>
    /// Every vCPU halted with nothing to wake it: with interrupts off, or (a machine without interrupt controllers,
    /// such as a flat guest's) with interrupts on but no source that could deliver one.
    /// </summary>
    public static VmExitResult AllHalted(bool interruptsEnabled = false) => new(VmStopReason.Halted, 0, interruptsEnabled
        ? "all vCPUs halted with interrupts enabled, but the machine has no interrupt controller to wake them"
        : "all vCPUs halted with interrupts disabled");
    public static VmExitResult TripleFault(int vcpu) => new(VmStopReason.TripleFault, 2, $"vCPU {vcpu} triple-faulted (shutdown)");
    public static VmExitResult GuestPanic(string panicLine) => new(VmStopReason.GuestPanic, 3, $"the guest kernel panicked: {panicLine}");
    public static VmExitResult GuestReset() => new(VmStopReason.GuestReset, 0, "the guest asked for a reset and --no-reboot is set");
    public static VmExitResult Host() => new(VmStopReason.HostRequest, 0, "stopped by the host");
    public static VmExitResult Internal(string message) => new(VmStopReason.InternalError, 1, message);
    public static VmExitResult Device(string message) => new(VmStopReason.DeviceError, 1, message);
}
