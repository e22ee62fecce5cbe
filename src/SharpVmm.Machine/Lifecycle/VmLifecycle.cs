namespace SharpVmm.Machine.Lifecycle;

/// <summary>
/// The lifecycle as a table of legal transitions, so every caller (CLI, QMP, devices) gets the same answers.
/// Reset keeps a paused VM paused, as QEMU's system_reset does, and takes a shut-down one back to prelaunch.
/// </summary>
public static class VmLifecycle
{
    public static VmState Next(VmState from, VmTransition t) => (from, t) switch
    {
        (VmState.Created, VmTransition.Start) => VmState.Running,
        (VmState.Running, VmTransition.Pause) => VmState.Paused,
        (VmState.Paused, VmTransition.Resume) => VmState.Running,
        (VmState.Running, VmTransition.Reset) => VmState.Running,
        (VmState.Paused, VmTransition.Reset) => VmState.Paused,
        // A VM the guest stopped, kept for a reset (QEMU's -no-shutdown): back to prelaunch. VirtualMachine refuses
        // it when the VM ended for good.
        (VmState.Stopped, VmTransition.Reset) => VmState.Created,
        (VmState.Created or VmState.Running or VmState.Paused, VmTransition.Stop) => VmState.Stopped,
        _ => throw new InvalidVmTransitionException(from, t),
    };

    public static bool IsAllowed(VmState from, VmTransition t)
    {
        try { Next(from, t); return true; }
        catch (InvalidVmTransitionException) { return false; }
    }
}
