namespace SharpVmm.Core.Cpu;

/// <summary>
/// One virtual CPU. <see cref="Run"/> executes guest code on the calling thread, sending port I/O and MMIO
/// to the <see cref="Io.IIoBus"/> the accelerator was given, and returns only for what the machine must
/// decide: halt, shutdown, a kick, an error.
/// </summary>
public interface IVcpu : IDisposable
{
    int Index { get; }

    /// <summary>Runs the guest until a control exit. Call from the vCPU's own thread only.</summary>
    VcpuExit Run();

    /// <summary>
    /// Makes a running or about-to-run <see cref="Run"/> return <see cref="VcpuExitReason.Kicked"/> promptly.
    /// Safe from any thread; a kick that arrives while the vCPU is not running is remembered for the next Run.
    /// </summary>
    void Kick();

    VcpuState GetState();
    void SetState(VcpuState state);
}
