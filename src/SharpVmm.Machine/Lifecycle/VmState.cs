namespace SharpVmm.Machine.Lifecycle;

/// <summary>Where a VM is in its life. QMP's query-status maps these to QEMU's names.</summary>
public enum VmState
{
    /// <summary>Built, vCPUs not started.</summary>
    Created,
    Running,
    /// <summary>Every vCPU is parked between guest instructions; guest time is frozen.</summary>
    Paused,
    /// <summary>Terminal: the guest powered off, failed, or the host stopped it.</summary>
    Stopped,
}
