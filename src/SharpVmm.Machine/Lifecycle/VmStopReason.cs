namespace SharpVmm.Machine.Lifecycle;

public enum VmStopReason
{
    /// <summary>The guest powered off (ACPI) or wrote the debug-exit port.</summary>
    PowerOff,
    /// <summary>Every vCPU halted with nothing that could wake it.</summary>
    Halted,
    /// <summary>A vCPU triple-faulted (KVM_EXIT_SHUTDOWN).</summary>
    TripleFault,
    /// <summary>The host asked: Stop(), QMP quit, a signal.</summary>
    HostRequest,
    /// <summary>The accelerator failed to run the guest.</summary>
    InternalError,
    /// <summary>A device failed, or the guest touched an unmapped address under the strict policy.</summary>
    DeviceError,
    /// <summary>The guest kernel panicked (seen on its console) and then asked for a reset or stopped.</summary>
    GuestPanic,
    /// <summary>The guest asked for a reset (ACPI reset register, i8042 pulse) and the VM runs with --no-reboot.</summary>
    GuestReset,
}
