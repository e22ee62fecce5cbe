using System.Text.Json.Nodes;
using SharpVmm.Core.Cpu;
using SharpVmm.Machine;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Monitor.Server;

/// <summary>
/// The VM as QMP sees it: QEMU's run-state names, the lifecycle commands with QEMU's answers in every state, and the
/// VM's state changes turned into QMP events. Lifecycle commands from all sessions are serialized here, so two
/// clients racing stop/cont get QEMU's answers rather than lifecycle exceptions.
/// </summary>
public sealed class VmMonitor : IDisposable
{
    private readonly VirtualMachine _vm;
    private readonly Action<string, JsonObject?> _emit;
    private readonly object _control = new();
    private readonly object _events = new();
    private VmState _last;
    private bool _suppressPauseEvents, _quit, _shutdownSent, _disposed;
    private volatile bool _qmpReset;

    /// <param name="emit">Sends an event (name, data or null) to every negotiated client.</param>
    public VmMonitor(VirtualMachine vm, Action<string, JsonObject?> emit)
    {
        _vm = vm;
        _emit = emit;
        _last = vm.State;
        _shutdownSent = _last == VmState.Stopped;
        vm.StateChanged += OnStateChanged;
        vm.OnReset(OnReset);
    }

    public VirtualMachine Vm => _vm;

    /// <summary>
    /// How query-blockstats names the disk of each drive (index, drive): a QEMU-speaking front end gives the names its
    /// command line used; null: SharpVmm's own (drive virtioN, device virtio-blkN, node #blockNNN).
    /// </summary>
    public Func<int, BlockDeviceInfo, BlockNodeNames>? BlockNames { get; set; }

    /// <summary>Presses the guest's power button (system_powerdown) instead of the machine's own ACPI button; null: the machine's.</summary>
    public Action? PowerButton { get; set; }

    /// <summary>Raised once per quit command, after the VM has stopped and the client's reply is queued.</summary>
    public event Action? QuitRequested;

    /// <summary>A run-state name that wins over the VM's own while it applies (migration's "inmigrate", "postmigrate"); null when none.</summary>
    public Func<string?>? RunStateOverride { get; set; }

    /// <summary>cont came while the VM waited for an incoming migration: start it once that has arrived.</summary>
    public bool StartAfterIncoming { get; private set; }

    /// <summary>QEMU's RunState name: prelaunch, running, paused, shutdown, guest-panicked or internal-error (or <see cref="RunStateOverride"/>'s).</summary>
    public string StatusName => RunStateOverride?.Invoke() ?? _vm.State switch
    {
        VmState.Created => "prelaunch",
        VmState.Running => "running",
        VmState.Paused => "paused",
        _ => _vm.StopResult?.Reason switch
        {
            VmStopReason.InternalError or VmStopReason.DeviceError => "internal-error",
            VmStopReason.GuestPanic => "guest-panicked",
            _ => "shutdown",
        },
    };

    public bool IsRunning => _vm.State == VmState.Running;

    /// <summary>QEMU's stop: pauses a running VM (STOP event); in any other state there is nothing to do and it succeeds.</summary>
    public void Stop()
    {
        lock (_control)
        {
            if (_vm.State != VmState.Running) return;
            try { _vm.Pause(); }
            catch (InvalidVmTransitionException) { } // the guest stopped meanwhile: nothing left to pause
        }
    }

    /// <summary>QEMU's cont: starts a VM in prelaunch, resumes a paused one (RESUME event), succeeds on a running one.</summary>
    public void Cont()
    {
        lock (_control)
        {
            try
            {
                switch (_vm.State)
                {
                    case VmState.Created when RunStateOverride?.Invoke() == "inmigrate":
                        // As QEMU: the guest starts once the incoming migration has arrived.
                        StartAfterIncoming = true;
                        break;
                    case VmState.Created:
                        // A target that received its state with late-block-activate opens the disks now, as QEMU's cont.
                        ActivateDisks();
                        _vm.Start();
                        break;
                    case VmState.Paused:
                        ActivateDisks();
                        _vm.Resume();
                        break;
                    case VmState.Running: break;
                    default: throw NeedsReset();
                }
            }
            catch (InvalidVmTransitionException)
            {
                if (_vm.State == VmState.Stopped) throw NeedsReset();
                // otherwise the host started or resumed it at the same moment: it runs, which is what was asked
            }
        }
    }

    /// <summary>
    /// A source that migrated away gave its disks to the target; as QEMU's cont, take them back before the guest runs,
    /// and refuse when that fails (the target holds them: running here too would have two writers).
    /// </summary>
    private void ActivateDisks()
    {
        foreach (var (_, image) in _vm.Devices.OfType<SharpVmm.Machine.Migration.MigratableImage>())
        {
            if (image.IsActive) continue;
            try { image.Activate(); }
            catch (SharpVmm.Machine.Migration.MigrationException ex) { throw QmpException.Generic(ex.Message); }
        }
    }

    private QmpException NeedsReset() => QmpException.Generic(_vm.CanReset
        ? "Resetting the Virtual Machine is required"
        : "Resetting the Virtual Machine is required (SharpVmm cannot reset a VM after shutdown: start a new one)");

    /// <summary>
    /// QEMU's system_reset: power-cycles the guest (RESET event); a paused VM stays paused, and one the guest shut down
    /// under -no-shutdown goes back to prelaunch, for cont to boot it again (libvirt's reboot).
    /// </summary>
    public void Reset()
    {
        lock (_control)
        {
            switch (_vm.State)
            {
                case VmState.Created:
                    // Nothing has run: the machine is already in its power-on state. QEMU still reports the reset.
                    EmitReset(guest: false);
                    return;
                case VmState.Stopped when !_vm.CanReset:
                    throw NeedsReset();
            }
            _qmpReset = true;
            try { _vm.Reset(); }
            catch (InvalidVmTransitionException) { throw NeedsReset(); }
            finally { _qmpReset = false; }
        }
    }

    /// <summary>
    /// QEMU's system_powerdown: emits POWERDOWN and presses the power button (the ACPI Generic Event Device's, or the
    /// host's <see cref="PowerButton"/>). What follows is up to the guest: one that acts on the button powers off
    /// (SHUTDOWN, guest-shutdown); one that does not, or a machine without a button, goes on running, as under QEMU.
    /// A paused or not yet started VM keeps the press pending until it runs.
    /// </summary>
    public void Powerdown()
    {
        lock (_control)
        {
            if (_vm.State == VmState.Stopped) throw QmpException.Generic("The VM has already shut down");
            _emit("POWERDOWN", null);
            if (PowerButton is { } press) press();
            else foreach (var (_, ged) in _vm.Devices.OfType<SharpVmm.Devices.Acpi.AcpiGed>()) ged.PressPowerButton();
        }
    }

    /// <summary>QEMU's quit: stops the VM and sends SHUTDOWN (host-qmp-quit); <see cref="QuitRequested"/> fires once the reply is queued.</summary>
    public void Quit(Commands.QmpCall call)
    {
        lock (_control)
        {
            // The VM's state is read outside _events: its reset hook takes _events under the VM's own lock.
            bool wasStopped = _vm.State == VmState.Stopped;
            lock (_events)
            {
                _quit = true;
                wasStopped |= _last == VmState.Stopped;
            }
            if (!wasStopped) _vm.Stop();
            // A VM that had already shut down still gets a SHUTDOWN for the quit, as QEMU with -no-shutdown sends.
            EmitShutdown(force: wasStopped);
        }
        call.AfterReply(() => QuitRequested?.Invoke());
    }

    /// <summary>
    /// Runs <paramref name="read"/> with every vCPU parked. QEMU reads live registers without a visible stop, so a
    /// running VM is paused and resumed around the read without STOP/RESUME events.
    /// </summary>
    public T WithQuiescentVm<T>(Func<T> read)
    {
        lock (_control)
        {
            if (_vm.State != VmState.Running) return read();
            bool paused = false;
            lock (_events) _suppressPauseEvents = true;
            try
            {
                try
                {
                    _vm.Pause();
                    paused = true;
                }
                catch (InvalidVmTransitionException) { } // stopped meanwhile: its state is readable as it is
                return read();
            }
            finally
            {
                if (paused)
                {
                    try { _vm.Resume(); }
                    catch (InvalidVmTransitionException) { }
                }
                lock (_events) _suppressPauseEvents = false;
            }
        }
    }

    public VcpuState GetVcpuState(int index) => WithQuiescentVm(() => _vm.GetVcpuState(index));

    private void OnStateChanged(VmState state)
    {
        lock (_events)
        {
            if (_disposed) return;
            var previous = _last;
            if (previous == VmState.Stopped && state != VmState.Created) return;
            _last = state;
            switch (state)
            {
                case VmState.Created:
                    // Reset after a guest shutdown: prelaunch again (its RESET is out); the next stop is a new SHUTDOWN.
                    _shutdownSent = false;
                    break;
                case VmState.Running when previous is VmState.Paused or VmState.Created && !_suppressPauseEvents:
                    _emit("RESUME", null);
                    break;
                case VmState.Paused when previous == VmState.Running && !_suppressPauseEvents:
                    _emit("STOP", null);
                    break;
                case VmState.Stopped:
                    // QEMU's default panic action (shutdown): GUEST_PANICKED, the STOP of entering guest-panicked,
                    // then SHUTDOWN with reason guest-panic. Under -no-shutdown (the VM is kept) QEMU pauses
                    // instead: GUEST_PANICKED with action pause, STOP, and no SHUTDOWN (libvirt then applies on_crash).
                    if (_vm.StopResult?.Reason == VmStopReason.GuestPanic && !_quit && !_shutdownSent)
                    {
                        bool kept = _vm.KeepAfterGuestStop; // (not CanReset: that takes the VM's lock, which its reset hook holds while it takes ours)
                        _emit("GUEST_PANICKED", new JsonObject { ["action"] = kept ? "pause" : "poweroff" });
                        if (previous == VmState.Running) _emit("STOP", null);
                        if (kept) break;
                    }
                    EmitShutdownLocked(force: false);
                    break;
            }
        }
    }

    private void OnReset()
    {
        lock (_events)
        {
            if (!_disposed) EmitReset(guest: !_qmpReset);
        }
    }

    private void EmitReset(bool guest) => _emit("RESET", new JsonObject
    {
        ["guest"] = guest,
        ["reason"] = guest ? "guest-reset" : "host-qmp-system-reset",
    });

    private void EmitShutdown(bool force)
    {
        lock (_events) EmitShutdownLocked(force);
    }

    private void EmitShutdownLocked(bool force)
    {
        if (_disposed || (_shutdownSent && !force)) return;
        _shutdownSent = true;
        _last = VmState.Stopped;
        var (guest, reason) = ShutdownCause();
        _emit("SHUTDOWN", new JsonObject { ["guest"] = guest, ["reason"] = reason });
    }

    /// <summary>QEMU's ShutdownCause for how the VM ended.</summary>
    private (bool Guest, string Reason) ShutdownCause()
    {
        if (_quit) return (false, "host-qmp-quit");
        if (_vm.StopResult is not { } stop) return (false, "host-error");
        return stop.Reason switch
        {
            VmStopReason.PowerOff or VmStopReason.Halted => (true, "guest-shutdown"),
            VmStopReason.TripleFault => (true, "guest-reset"), // QEMU with -no-reboot shuts down on a triple fault
            VmStopReason.GuestPanic => (true, "guest-panic"),
            VmStopReason.GuestReset => (true, "guest-reset"), // QEMU's -no-reboot
            VmStopReason.HostRequest => (false, "host-signal"),
            _ => (false, "host-error"),
        };
    }

    public void Dispose()
    {
        lock (_events)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _vm.StateChanged -= OnStateChanged;
    }
}
