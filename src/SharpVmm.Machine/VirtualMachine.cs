using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Io;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Legacy;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Memory;

namespace SharpVmm.Machine;

/// <summary>
/// A running guest: its RAM, bus, accelerator and one host thread per vCPU, driven through the
/// <see cref="VmLifecycle"/> state machine. Devices reach it as <see cref="IVmControl"/> (power off, reset);
/// the host through Start/Pause/Resume/Reset/Stop. Pause returns only once every vCPU is parked, so a paused
/// guest executes nothing.
/// </summary>
public sealed partial class VirtualMachine : IVmControl, IDisposable
{
    private readonly object _gate = new();
    private readonly ILogger _log;
    private readonly IVcpu[] _vcpus;
    private readonly Thread[] _threads;
    private readonly bool[] _halted;
    private readonly bool[] _haltedWithInterrupts;
    private readonly int[] _threadIds;
    private readonly Func<VcpuState[]> _loadPayload;
    private readonly List<IDisposable> _owned = [];
    private readonly List<Action> _resetHandlers = [];
    private readonly TaskCompletionSource<VmExitResult> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private VmState _state = VmState.Created;
    private bool _pauseRequested, _stopRequested, _resetPending;
    private int _parked, _liveThreads;
    private bool _disposed;
    private VmExitResult? _stopResult;

    /// <param name="loadPayload">Writes the boot payload into RAM and returns each vCPU's entry state; run at start and at every reset.</param>
    public VirtualMachine(GuestMemory memory, IoBus bus, IAccelerator accelerator, int vcpuCount, Func<VcpuState[]> loadPayload,
        GuestClock? clock = null, ILogger? logger = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpuCount, 1);
        Memory = memory;
        Bus = bus;
        Accelerator = accelerator;
        Clock = clock ?? new GuestClock();
        _log = logger ?? NullLogger.Instance;
        _loadPayload = loadPayload;
        _halted = new bool[vcpuCount];
        _haltedWithInterrupts = new bool[vcpuCount];
        _threadIds = new int[vcpuCount];
        _threads = new Thread[vcpuCount];
        _vcpus = new IVcpu[vcpuCount];
        bus.Fault = f => Finish(VmExitResult.Device(f.Message));
        try
        {
            for (int i = 0; i < vcpuCount; i++) _vcpus[i] = accelerator.CreateVcpu(i);
            ApplyStates(_loadPayload());
        }
        catch
        {
            foreach (var v in _vcpus) v?.Dispose();
            throw;
        }
    }

    public GuestMemory Memory { get; }
    public IoBus Bus { get; }
    public IAccelerator Accelerator { get; }
    public GuestClock Clock { get; }
    public int VcpuCount => _vcpus.Length;

    /// <summary>The devices the VM was built with, by id (filled by the builder before Start).</summary>
    public VmDevices Devices { get; } = new();

    public VmState State { get { lock (_gate) return _state; } }

    /// <summary>Raised after every state change, outside the VM's lock (QMP turns these into events).</summary>
    public event Action<VmState>? StateChanged;

    /// <summary>How the VM ended, set at the moment it stops (before <see cref="StateChanged"/> reports Stopped); null until then.</summary>
    public VmExitResult? StopResult { get { lock (_gate) return _stopResult; } }

    /// <summary>
    /// QEMU's -no-shutdown: when the guest ends the run itself (powers off, panics, resets under --no-reboot), the
    /// vCPU threads park instead of leaving, and <see cref="Reset"/> can bring the stopped VM back to
    /// <see cref="VmState.Created"/> (QEMU's prelaunch) for <see cref="Start"/> to boot it again, as libvirt's
    /// reboot of a guest that powered off does (system_reset, then cont). A host stop still ends the VM for good.
    /// </summary>
    public bool KeepAfterGuestStop { get; set; }

    /// <summary>True unless the VM stopped for good (a host stop, an error, or a guest stop without <see cref="KeepAfterGuestStop"/>).</summary>
    public bool CanReset { get { lock (_gate) return !_stopRequested; } }

    /// <summary>Completes once, when the VM first stops, with how it ended, after StateChanged listeners have heard of it.</summary>
    public Task<VmExitResult> Exited => _exit.Task;

    /// <summary>Hands an object to the VM to dispose with it (devices, backends).</summary>
    public void Own(IDisposable resource) => _owned.Add(resource);

    /// <summary>Called on every reset, with all vCPUs parked, before the payload is reloaded (devices return to power-on state).</summary>
    public void OnReset(Action handler) => _resetHandlers.Add(handler);

    public void Start()
    {
        bool create;
        lock (_gate)
        {
            _state = VmLifecycle.Next(_state, VmTransition.Start);
            Clock.Resume(); // LoadMachineState leaves the clock stopped at the saved instant until the guest runs
            create = _threads[0] is null;
            if (create) CreateThreadsLocked();
            Monitor.PulseAll(_gate); // threads made by StartVcpuThreads wait for this
        }
        if (create) foreach (var t in _threads) t.Start();
        Changed(VmState.Running);
    }

    /// <summary>
    /// Creates the vCPU threads before <see cref="Start"/>, parked until it, so their host thread ids exist while the
    /// VM is still in prelaunch (QEMU creates them with the machine; libvirt reads them before it lets the VM run).
    /// Returns once every thread id is known.
    /// </summary>
    public void StartVcpuThreads()
    {
        lock (_gate)
        {
            if (_state != VmState.Created || _threads[0] is not null) return;
            CreateThreadsLocked();
        }
        foreach (var t in _threads) t.Start();
        for (int i = 0; i < _threadIds.Length; i++)
            while (Volatile.Read(ref _threadIds[i]) == 0 && _threads[i].IsAlive) Thread.Sleep(1);
    }

    private void CreateThreadsLocked()
    {
        _liveThreads = _vcpus.Length;
        for (int i = 0; i < _vcpus.Length; i++)
        {
            int index = i;
            _threads[i] = new Thread(() => VcpuLoop(index)) { IsBackground = true, Name = $"vcpu{i}" };
        }
    }

    public void Pause()
    {
        lock (_gate)
        {
            _state = VmLifecycle.Next(_state, VmTransition.Pause);
            _pauseRequested = true;
            Clock.Pause();
            KickAll();
            WaitAllParked();
            DrainDeviceIo();
        }
        Changed(VmState.Paused);
    }

    /// <summary>Waits for the devices that work on after the vCPUs park (<see cref="IDrainOnPause"/>): a paused VM is still.</summary>
    private void DrainDeviceIo()
    {
        foreach (var (id, device) in Devices.OfType<IDrainOnPause>())
            if (!device.WaitIdle(TimeSpan.FromSeconds(30)))
                _log.LogWarning("{Device}: I/O still in flight 30 s after pause", id);
    }

    public void Resume()
    {
        lock (_gate)
        {
            _state = VmLifecycle.Next(_state, VmTransition.Resume);
            _pauseRequested = false;
            Clock.Resume();
            Monitor.PulseAll(_gate);
        }
        Changed(VmState.Running);
    }

    /// <summary>
    /// Power-cycles the guest: devices reset, payload reloaded, vCPUs at their entry state. A paused VM stays paused;
    /// one that the guest stopped under <see cref="KeepAfterGuestStop"/> returns to <see cref="VmState.Created"/>.
    /// </summary>
    public void Reset()
    {
        lock (_gate)
        {
            if (_stopRequested) throw new InvalidVmTransitionException(_state, VmTransition.Reset);
            VmLifecycle.Next(_state, VmTransition.Reset);
            _resetPending = true;
            KickAll();
        }
        CompleteReset();
    }

    /// <summary>Runs the reset once every vCPU has parked; <see cref="_resetPending"/> keeps them parked meanwhile.</summary>
    private void CompleteReset()
    {
        VmState now;
        lock (_gate)
        {
            try
            {
                WaitAllParked();
                if (_stopRequested) return;
                foreach (var h in _resetHandlers) h();
                ApplyStates(_loadPayload());
                Array.Clear(_halted);
                if (_state == VmState.Stopped)
                {
                    // Back to prelaunch: the threads stay parked until Start.
                    _state = VmLifecycle.Next(_state, VmTransition.Reset);
                    _stopResult = null;
                }
            }
            finally
            {
                _resetPending = false;
                Monitor.PulseAll(_gate);
            }
            now = _state;
        }
        _log.LogInformation("VM reset");
        Changed(now);
    }

    /// <summary>Stops the VM (terminal) and waits for its vCPU threads to leave the guest.</summary>
    public void Stop()
    {
        Finish(VmExitResult.Host());
        JoinThreads();
    }

    public VcpuState GetVcpuState(int index)
    {
        lock (_gate)
        {
            RequireQuiescent();
            return _vcpus[index].GetState();
        }
    }

    public void SetVcpuState(int index, VcpuState state)
    {
        lock (_gate)
        {
            RequireQuiescent();
            _vcpus[index].SetState(state);
        }
    }

    void IVmControl.RequestPowerOff(int exitCode) => Finish(VmExitResult.PowerOff(exitCode));

    /// <summary>
    /// Consulted when the guest asks for a reset (or triple-faults): a result ends the run with it instead (a reset
    /// after a kernel panic would only boot into the same panic again).
    /// </summary>
    public Func<VmExitResult?>? ResetPolicy { get; set; }

    /// <summary>Ends the run with <paramref name="result"/> (from any thread; the first result wins).</summary>
    public void StopWith(VmExitResult result) => Finish(result);

    void IVmControl.RequestReset()
    {
        if (ResetPolicy?.Invoke() is { } instead)
        {
            Finish(instead);
            return;
        }
        // Called on a vCPU thread, which must return to its loop and park before the reset can happen. Marking the
        // reset pending here, before returning to the guest, keeps that vCPU (and the others) from running on.
        lock (_gate)
        {
            if (_stopRequested || _resetPending) return;
            _resetPending = true;
            KickAll();
        }
        Task.Run(() =>
        {
            try { CompleteReset(); }
            catch (Exception ex) { Finish(VmExitResult.Internal($"reset failed: {ex.Message}")); }
        });
    }

    private void RequireQuiescent()
    {
        if (_state == VmState.Running)
            throw new Core.VmmException("vCPU state can only be read or written while the VM is paused, stopped or not yet started");
    }

    private void ApplyStates(VcpuState[] states)
    {
        for (int i = 0; i < _vcpus.Length; i++)
            if (i < states.Length && states[i] is { } s) _vcpus[i].SetState(s);
    }

    /// <summary>Host thread id (Linux TID) running vCPU <paramref name="index"/>; 0 until <see cref="Start"/> or <see cref="StartVcpuThreads"/> has made it.</summary>
    public int GetVcpuThreadId(int index) => Volatile.Read(ref _threadIds[index]);

    private void VcpuLoop(int index)
    {
        Volatile.Write(ref _threadIds[index], HostThread.CurrentId());
        var vcpu = _vcpus[index];
        try
        {
            lock (_gate)
                while (_state == VmState.Created && !_stopRequested) Monitor.Wait(_gate);
            while (WaitRunnable(index))
            {
                VcpuExit exit;
                try
                {
                    exit = vcpu.Run();
                }
                catch (Exception ex)
                {
                    Finish(VmExitResult.Internal($"vCPU {index} failed: {ex.Message}"));
                    continue;
                }
                HandleExit(index, exit);
            }
        }
        finally
        {
            lock (_gate)
            {
                _liveThreads--;
                Monitor.PulseAll(_gate);
            }
        }
    }

    private void HandleExit(int index, VcpuExit exit)
    {
        switch (exit.Reason)
        {
            case VcpuExitReason.Kicked:
                return;
            case VcpuExitReason.Halt:
                // Read on this vCPU's own thread while it is out of the guest; HLT exits are rare (flat guests).
                bool withIf = (_vcpus[index].GetState().Rflags & 0x200) != 0;
                VmExitResult? halted = null;
                bool stopped = false;
                lock (_gate)
                {
                    _halted[index] = true;
                    _haltedWithInterrupts[index] = withIf;
                    if (!_resetPending && Array.TrueForAll(_halted, h => h))
                    {
                        halted = VmExitResult.AllHalted(Array.Exists(_haltedWithInterrupts, h => h));
                        stopped = FinishLocked(halted);
                    }
                }
                if (stopped) Completed(halted!);
                return;
            case VcpuExitReason.Shutdown:
                // A reset already asked for wins: a guest that goes on after writing the reset register (Linux
                // tries its next reboot method, the last being a triple fault) must not turn its reboot into a crash.
                lock (_gate)
                    if (_resetPending) return;
                // Otherwise a triple fault is a crash report (exit 2), unless it follows a kernel panic.
                Finish(ResetPolicy?.Invoke() is { Reason: VmStopReason.GuestPanic } panic ? panic : VmExitResult.TripleFault(index));
                return;
            case VcpuExitReason.SystemEvent when exit.Code == SystemEventReset:
                ((IVmControl)this).RequestReset();
                return;
            case VcpuExitReason.SystemEvent when exit.Code == SystemEventShutdown:
                Finish(VmExitResult.PowerOff(0));
                return;
            default:
                Finish(VmExitResult.Internal($"vCPU {index}: {exit}"));
                return;
        }
    }

    // KVM_SYSTEM_EVENT_* values; the emulator reports the same numbers.
    private const ulong SystemEventShutdown = 1, SystemEventReset = 2;

    /// <summary>Parks the calling vCPU thread while paused or halted; false once the VM stops.</summary>
    private bool WaitRunnable(int index)
    {
        lock (_gate)
        {
            if (_stopRequested) return false;
            if (!MustPark(index)) return true;
            _parked++;
            Monitor.PulseAll(_gate);
            while (MustPark(index)) Monitor.Wait(_gate);
            _parked--;
            return !_stopRequested;
        }
    }

    /// <summary>A vCPU parks while paused, halted, during a reset, and while stopped (or back in prelaunch) under KeepAfterGuestStop.</summary>
    private bool MustPark(int index) => !_stopRequested
        && (_pauseRequested || _resetPending || _halted[index] || _state is VmState.Stopped or VmState.Created);

    private void WaitAllParked()
    {
        while (_parked < _liveThreads && !_stopRequested && _state != VmState.Created) Monitor.Wait(_gate);
    }

    private void KickAll()
    {
        foreach (var v in _vcpus) v.Kick();
    }

    private void Finish(VmExitResult result)
    {
        bool stopped;
        lock (_gate) stopped = FinishLocked(result);
        if (stopped) Completed(result);
    }

    /// <summary>Moves to Stopped under the lock; true if this call did it, and must then call <see cref="Completed"/> outside the lock.</summary>
    private bool FinishLocked(VmExitResult result)
    {
        if (_stopRequested) return false;
        if (_state == VmState.Stopped)
        {
            // Stopped by the guest and kept (KeepAfterGuestStop): only the host can end it now, silently (it was reported).
            if (IsHostOrError(result.Reason))
            {
                _stopRequested = true;
                KickAll();
                Monitor.PulseAll(_gate);
            }
            return false;
        }
        _stopRequested = !KeepAfterGuestStop || IsHostOrError(result.Reason);
        _stopResult = result;
        _state = VmState.Stopped;
        Clock.Pause();
        KickAll();
        Monitor.PulseAll(_gate);
        if (result.IsError) _log.LogError("VM stopped: {Message}", result.Message);
        else _log.LogInformation("VM stopped: {Message}", result.Message);
        return true;
    }

    private static bool IsHostOrError(VmStopReason reason) => reason is VmStopReason.HostRequest or VmStopReason.InternalError or VmStopReason.DeviceError;

    /// <summary>
    /// Tells listeners (QMP's SHUTDOWN event) before completing <see cref="Exited"/>, synchronously, so whoever
    /// waits on either (Stop(), <c>sharpvmm run</c> tearing down the monitor) never outruns the notification.
    /// </summary>
    private void Completed(VmExitResult result)
    {
        Changed(VmState.Stopped);
        _exit.TrySetResult(result);
    }

    private void JoinThreads()
    {
        foreach (var t in _threads)
            if (t is not null && t != Thread.CurrentThread && t.IsAlive) t.Join();
    }

    private void Changed(VmState s)
    {
        try { StateChanged?.Invoke(s); }
        catch (Exception ex) { _log.LogWarning(ex, "a state-change listener failed"); }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Finish(VmExitResult.Host());
        JoinThreads();
        foreach (var v in _vcpus) v?.Dispose();
        Accelerator.Dispose();
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        Memory.Dispose();
    }
}
