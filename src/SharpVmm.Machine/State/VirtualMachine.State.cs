using Microsoft.Extensions.Logging;
using SharpVmm.Core.State;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.State;

namespace SharpVmm.Machine;

public sealed partial class VirtualMachine
{
    /// <summary>
    /// Writes everything but RAM that the guest's continuation depends on: every vCPU's state (registers, FPU/SSE,
    /// MSRs, LAPIC, pending events), the guest clock, the accelerator's own state (KVM's in-kernel irqchip and PIT)
    /// and one section per device in <see cref="Devices"/>. The VM must be Paused or Created. The stream gets a
    /// self-delimiting record (<see cref="MachineStateFormat"/>): a reader stops at its end, so RAM or anything else may
    /// follow it on the same stream. Throws <see cref="StateFormatException"/> if a device cannot save its state.
    /// </summary>
    public void SaveMachineState(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        byte[] record;
        lock (_gate)
        {
            if (_state is not (VmState.Paused or VmState.Created))
                throw new Core.VmmException($"the VM's state can only be saved while it is paused or not yet started (it is {_state.ToString().ToLowerInvariant()}): pause it first");
            record = MachineStateFormat.Save(this, _vcpus, _halted);
        }
        stream.Write(record);
    }

    /// <summary>
    /// Loads a record written by <see cref="SaveMachineState"/> into this VM, which must be freshly built from the
    /// same configuration and not yet started; RAM is loaded separately (before or after). Afterwards
    /// <see cref="Start"/> continues the guest where the saved one was: the boot payload is not loaded again, and the
    /// guest clock resumes from the saved instant. Everything is checked before anything is applied: a corrupt or
    /// truncated record, an unknown version or a different machine (vCPU count, RAM size, device set) throws
    /// <see cref="StateFormatException"/> naming the difference and leaves the VM as it was. Reads exactly the record
    /// from <paramref name="stream"/>.
    /// </summary>
    public void LoadMachineState(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var saved = MachineStateFormat.Read(stream);
        lock (_gate)
        {
            if (_state != VmState.Created)
                throw new Core.VmmException($"saved state can only be loaded into a VM that has not started (this one is {_state.ToString().ToLowerInvariant()}): build a new VM from the same configuration");
            saved.CheckMatches(this);
            saved.Apply(this, _vcpus, _halted);
        }
        _log.LogInformation("machine state loaded: {Cpus} vCPU(s), {Devices} device section(s), guest time {Seconds:F3} s",
            saved.Vcpus.Length, saved.Devices.Count, saved.ClockNs / 1e9);
    }
}
