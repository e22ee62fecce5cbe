namespace SharpVmm.Core.Cpu;

public enum VcpuExitReason
{
    /// <summary>HLT with nothing to wake it (interrupts disabled, or no interrupt controller that could).</summary>
    Halt,
    /// <summary>Triple fault or KVM_EXIT_SHUTDOWN: the machine resets or stops, as configured.</summary>
    Shutdown,
    /// <summary><see cref="IVcpu.Kick"/> was called: the machine wants the thread back (pause, stop, reset, state access).</summary>
    Kicked,
    /// <summary>The guest asked for a system event (KVM_EXIT_SYSTEM_EVENT); <see cref="VcpuExit.Code"/> is its type.</summary>
    SystemEvent,
    /// <summary>The accelerator could not enter the guest (KVM_EXIT_FAIL_ENTRY); Code is the hardware reason.</summary>
    FailEntry,
    /// <summary>The accelerator failed to run the guest (KVM internal error, emulator failure); Detail says why.</summary>
    InternalError,
    /// <summary>An exit reason this VMM does not handle; Code is its number.</summary>
    Unknown,
}

/// <summary>Why <see cref="IVcpu.Run"/> returned. Allocation-free except for the diagnostic text of failures.</summary>
public readonly record struct VcpuExit(VcpuExitReason Reason, ulong Code = 0, string? Detail = null)
{
    public static VcpuExit Halt => new(VcpuExitReason.Halt);
    public static VcpuExit Kicked => new(VcpuExitReason.Kicked);
    public static VcpuExit Shutdown => new(VcpuExitReason.Shutdown);

    public override string ToString() => Detail is null ? $"{Reason} (0x{Code:x})" : $"{Reason} (0x{Code:x}): {Detail}";
}
