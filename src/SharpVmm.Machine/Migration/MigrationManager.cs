using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Machine.Lifecycle;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// One VM's migrations, as its monitor and command line see them: the parameters, the outgoing migration (at most
/// one at a time), and the incoming one of a VM started to receive (<c>--incoming</c>). It also knows QEMU's run-state
/// names that only migration produces: "inmigrate" while a VM waits for or receives its state, "postmigrate" once a
/// migration has moved the guest away.
/// </summary>
public sealed class MigrationManager
{
    private readonly VirtualMachine _vm;
    private readonly ILoggerFactory _loggers;
    private readonly object _gate = new();
    private readonly TaskCompletionSource<MigrationTarget> _incomingTarget = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MigrationParameters _parameters = new();
    private MigrationCapabilitySet _capabilities = new();
    private MigrationSource? _outgoing;
    private MigrationTarget? _incoming;
    private bool _expectIncoming, _incomingDone;

    public MigrationManager(VirtualMachine vm, ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        _vm = vm;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        // A guest resumed by cont after it migrated away needs its disks back (QEMU re-activates them too).
        vm.StateChanged += state =>
        {
            if (state != VmState.Running) return;
            foreach (var (_, image) in vm.Devices.OfType<MigratableImage>())
            {
                try { image.Activate(); }
                catch (MigrationException ex) { _loggers.CreateLogger("SharpVmm.Migration").LogError("{Message}", ex.Message); }
            }
        };
    }

    public VirtualMachine Vm => _vm;

    /// <summary>Raised at every status change of either direction (QMP's MIGRATION event).</summary>
    public event Action<MigrationStatus>? StatusChanged;

    /// <summary>Raised at the start of each pass over RAM of an outgoing migration (QMP's MIGRATION_PASS).</summary>
    public event Action<int>? PassStarted;

    /// <summary>
    /// Finds a descriptor the monitor holds by name (QMP's getfd) and hands it over: the migration then owns it. Set
    /// by the monitor; a name it does not know throws <see cref="MigrationException"/>.
    /// </summary>
    public Func<string, int>? NamedFds { get; set; }

    /// <summary>Runs an action with the vCPUs parked and no STOP/RESUME events; the monitor sets it.</summary>
    public Action<Action>? Quiesce { get; set; }

    public MigrationParameters Parameters
    {
        get { lock (_gate) return _parameters; }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.Validate();
            lock (_gate) _parameters = value;
        }
    }

    /// <summary>QEMU's migration capabilities; they cannot change while a migration runs, as in QEMU.</summary>
    public MigrationCapabilitySet Capabilities
    {
        get { lock (_gate) return _capabilities; }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            lock (_gate)
            {
                if (_outgoing is { } o && !o.Status.IsFinished() || _incoming is { } i && !i.Status.IsFinished() && i.Status != MigrationStatus.Setup)
                    throw new MigrationException("There's a migration process in progress");
                _capabilities = value;
            }
        }
    }

    /// <summary>The last outgoing migration, if any.</summary>
    public MigrationSource? Outgoing { get { lock (_gate) return _outgoing; } }

    /// <summary>The incoming migration, once the VM listens for one.</summary>
    public MigrationTarget? Incoming { get { lock (_gate) return _incoming; } }

    /// <summary>Progress of the migration that concerns this VM now: the outgoing one, or else the incoming one; null if none ever ran.</summary>
    public MigrationStats? Stats => Outgoing?.Stats ?? Incoming?.Stats;

    /// <summary>"inmigrate" or "postmigrate" where QEMU reports them instead of the VM's own run state; null otherwise.</summary>
    public string? RunStateOverride
    {
        get
        {
            lock (_gate)
            {
                if (_expectIncoming && !_incomingDone && _vm.State == VmState.Created) return "inmigrate";
                if (_outgoing?.Status == MigrationStatus.Completed && _vm.State == VmState.Paused) return "postmigrate";
                return null;
            }
        }
    }

    /// <summary>Marks the VM as one that will receive its state (<c>--incoming</c>); it must not be started meanwhile.</summary>
    public void ExpectIncoming()
    {
        lock (_gate) _expectIncoming = true;
    }

    public bool ExpectsIncoming { get { lock (_gate) return _expectIncoming && !_incomingDone; } }

    /// <summary>
    /// QMP's migrate-incoming for a VM started with <c>--incoming defer</c>: listens at once (as QEMU, so a source
    /// may connect as soon as the command has returned) or takes the descriptor; whoever waits on
    /// <see cref="IncomingTarget"/> then receives.
    /// </summary>
    public void RequestIncoming(string uri)
    {
        MigrationUri.Parse(uri, listening: true);
        lock (_gate)
        {
            if (!_expectIncoming || _incomingDone)
                throw new MigrationException("migrate-incoming is only for a VM started with --incoming defer that has not received a migration yet");
            if (_incoming is not null)
                throw new MigrationException("the incoming migration has already been set up: it can only be given once");
        }
        ListenIncoming(uri);
    }

    /// <summary>Completes with the target once migrate-incoming (or <see cref="ListenIncoming"/>) has set it up.</summary>
    public Task<MigrationTarget> IncomingTarget => _incomingTarget.Task;

    /// <summary>Listens on <paramref name="uri"/> (binds now, so a bad address fails at once) and returns the target, not yet receiving.</summary>
    public MigrationTarget ListenIncoming(string uri)
    {
        var parsed = MigrationUri.Parse(uri, listening: true);
        var target = new MigrationTarget(_vm, _loggers.CreateLogger("SharpVmm.Migration")) { ActivateDisksOnCompletion = !Capabilities.LateBlockActivate };
        target.StatusChanged += s =>
        {
            // Done before the event goes out: a manager that sends cont on it finds the VM out of inmigrate.
            if (s == MigrationStatus.Completed) lock (_gate) _incomingDone = true;
            StatusChanged?.Invoke(s);
        };
        lock (_gate)
        {
            if (_incoming is not null) throw new MigrationException("an incoming migration is already set up");
            _expectIncoming = true;
            _incoming = target;
        }
        try
        {
            if (parsed.IsFd) target.Attach(MigrationChannel.FromDescriptor(TakeFd(parsed), forWriting: false, $"incoming migration from {parsed}"));
            else target.Listen(parsed);
        }
        catch
        {
            lock (_gate) _incoming = null;
            throw;
        }
        _incomingTarget.TrySetResult(target);
        return target;
    }

    /// <summary>Receives the migration on <paramref name="target"/>; the VM may then be started.</summary>
    public void ReceiveIncoming(MigrationTarget target, CancellationToken cancel = default)
    {
        target.Receive(cancel);
        lock (_gate) _incomingDone = true;
    }

    /// <summary>QMP's migrate: starts an outgoing migration in the background.</summary>
    public MigrationSource StartOutgoing(string uri)
    {
        var parsed = MigrationUri.Parse(uri, listening: false);
        MigrationSource source;
        lock (_gate)
        {
            if (_expectIncoming && !_incomingDone)
                throw new MigrationException("this VM is waiting for an incoming migration; it cannot migrate out before it has received one");
            if (_outgoing is { } running && !running.Status.IsFinished())
                throw new MigrationException("a migration is already in progress; cancel it with migrate_cancel or wait for it to end");
            var channel = parsed.IsFd ? MigrationChannel.FromDescriptor(TakeFd(parsed), forWriting: true, $"migration to {parsed}") : null;
            var logger = _loggers.CreateLogger("SharpVmm.Migration");
            bool pause = _capabilities.PauseBeforeSwitchover;
            source = Quiesce is { } quiesce
                ? new MigrationSource(_vm, _parameters, logger) { Quiesce = quiesce, PauseBeforeSwitchover = pause }
                : new MigrationSource(_vm, _parameters, logger) { PauseBeforeSwitchover = pause };
            source.StatusChanged += s => StatusChanged?.Invoke(s);
            source.PassStarted += n => PassStarted?.Invoke(n);
            source.Start(parsed, channel);
            _outgoing = source;
        }
        return source;
    }

    /// <summary>Opens the disks a target left closed (late-block-activate) before its guest starts; cont does the same.</summary>
    public void ActivateDisks()
    {
        foreach (var (_, image) in _vm.Devices.OfType<MigratableImage>()) image.Activate();
    }

    /// <summary>QMP's migrate-continue: the outgoing migration leaves <paramref name="state"/> (pre-switchover).</summary>
    public void ContinueOutgoing(MigrationStatus state)
    {
        var source = Outgoing ?? throw new MigrationException($"Migration not in expected state: {MigrationStatus.None.Name()}");
        source.Continue(state);
    }

    /// <summary>The descriptor of an fd: URI: a number is one this process inherited, a name one the monitor holds.</summary>
    private int TakeFd(MigrationUri uri)
    {
        if (uri.FdNumber is { } n) return n;
        if (NamedFds is not { } named) throw new MigrationException($"File descriptor named '{uri.Fd}' has not been found");
        return named(uri.Fd!);
    }

    /// <summary>QMP's migrate_cancel: stops the outgoing migration if one is running; nothing otherwise.</summary>
    public void CancelOutgoing() => Outgoing?.Cancel();
}
