namespace SharpVmm.Core.Io;

/// <summary>
/// A device that goes on completing requests (and writing guest RAM) on a thread of its own after the vCPUs park.
/// A paused VM must be still, for snapshots and for migration's last RAM pass, so pause waits for each of them, as
/// QEMU drains block I/O when it stops a VM.
/// </summary>
public interface IDrainOnPause
{
    /// <summary>Waits until no request is in flight; false when <paramref name="timeout"/> passed first.</summary>
    bool WaitIdle(TimeSpan timeout);
}
