using SharpVmm.Machine;
using SharpVmm.Machine.Migration;

namespace SharpVmm.Cli.Run;

/// <summary>
/// <c>sharpvmm run ... --incoming tcp:HOST:PORT</c> (or <c>defer</c>, then QMP's migrate-incoming names the address):
/// the VM is built but not started, waits in QEMU's "inmigrate" state for a source, and starts only once the whole
/// migration arrived and loaded.
/// </summary>
public static class IncomingMigration
{
    public const string Defer = "defer";

    /// <summary>True when the guest may start; false when the VM was stopped (quit, signal) while waiting. A refused stream throws.</summary>
    public static bool Receive(VirtualMachine vm, MigrationManager migration, string incoming)
    {
        // Not disposed: the VM may exit (and cancel it) long after this returns.
        var stop = new CancellationTokenSource();
        _ = vm.Exited.ContinueWith(_ => stop.Cancel(), TaskScheduler.Default);
        MigrationTarget target;
        if (incoming == Defer)
        {
            var requested = migration.IncomingTarget;
            Task.WaitAny(requested, vm.Exited);
            if (!requested.IsCompletedSuccessfully) return false;
            target = requested.Result;
        }
        else target = migration.ListenIncoming(incoming);
        using var owned = target;
        if (target.LocalEndPoint is { } listening)
        {
            if (ExposureWarning(listening) is { } warning) Console.Error.WriteLine(warning);
            Console.Error.WriteLine($"sharpvmm: waiting for an incoming migration on {new MigrationUri(listening.Address.ToString(), listening.Port)}");
        }
        try
        {
            migration.ReceiveIncoming(target, stop.Token);
        }
        catch (MigrationException) when (stop.IsCancellationRequested)
        {
            return false;
        }
        return true;
    }

    /// <summary>The stderr line for a listener not on loopback (the stream is neither authenticated nor encrypted); null on loopback.</summary>
    public static string? ExposureWarning(System.Net.IPEndPoint listening) =>
        System.Net.IPAddress.IsLoopback(listening.Address) ? null
            : $"sharpvmm: warning: the incoming migration listens on {listening}, not on loopback: anyone who can reach that port can replace this VM's guest (the stream is neither authenticated nor encrypted)";
}
