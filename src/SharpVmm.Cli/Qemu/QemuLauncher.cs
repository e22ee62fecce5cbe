using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using SharpVmm.Cli.Run;
using SharpVmm.Core;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.Migration;
using SharpVmm.Machine.Sandbox;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// Runs a VM from a QEMU command line the way QEMU's process behaves towards whoever started it (libvirt): the
/// monitor is up before anything else can happen, -S waits for cont, -no-shutdown keeps the process after the
/// guest powers off, SIGTERM ends it with SHUTDOWN (host-signal), -daemonize returns once all is ready.
/// </summary>
public static class QemuLauncher
{
    public static int Run(string[] args)
    {
        QemuInvocation q;
        try
        {
            q = QemuArgParser.Parse(args);
        }
        catch (ConfigurationException ex)
        {
            Console.Error.WriteLine($"sharpvmm: {ex.Message}");
            return 1;
        }
        if (q.Help is { } topic)
        {
            Console.Out.Write(QemuHelp.Text(topic));
            return 0;
        }
        int readyFd = QemuDaemon.ReadyFd();
        if (q.Daemonize && readyFd < 0) return QemuDaemon.Launch(args);
        try
        {
            return Execute(q, readyFd);
        }
        catch (Exception ex) when (ex is VmmException or IOException or UnauthorizedAccessException or SocketException)
        {
            Console.Error.WriteLine(Message(q, ex.Message));
            return 1;
        }
    }

    /// <summary>An error line, with QEMU's -msg timestamp=on prefix when asked.</summary>
    private static string Message(QemuInvocation q, string text)
        => (q.MessageTimestamps ? DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z' ", CultureInfo.InvariantCulture) : "") + "sharpvmm: " + text;

    private static int Execute(QemuInvocation q, int readyFd)
    {
        var config = QemuVmConfig.Build(q);
        var monitorSpec = CheckChardevs(q);
        using var loggers = Logging.CreateFactory();
        bool kvmPresent = QemuVmConfig.KvmUsable();
        using var vm = VmBuilder.Build(config, loggers);
        vm.KeepAfterGuestStop = q.NoShutdown && monitorSpec is not null;
        var migration = new MigrationManager(vm, loggers);
        if (q.Incoming is not null) migration.ExpectIncoming();
        var options = new QmpServerOptions { Logger = loggers.CreateLogger("SharpVmm.Qmp"), Migration = migration, StartClosed = true };
        string filename = "";
        using var monitor = monitorSpec is null ? null : StartMonitor(q, vm, monitorSpec, options, out filename);
        if (monitor is not null)
        {
            QemuQmpCommands.Register(monitor.Commands, new QemuQmpContext(q, vm, config.Accelerator, kvmPresent, filename));
            monitor.Monitor.BlockNames = (i, d) => QemuQmpCommands.BlockNames(q, i, d);
            monitor.Open(); // only now: a client that connected at once would otherwise miss these commands
        }
        // The vCPU threads exist from here on, as in QEMU, so a manager can read their ids before it lets the guest run.
        vm.StartVcpuThreads();

        var terminate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; terminate.TrySetResult(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; terminate.TrySetResult(); });
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; terminate.TrySetResult(); });
        if (monitor is not null && q.NoShutdown)
        {
            // -no-shutdown: the guest powering off leaves the process, stopped, as QEMU says with STOP after SHUTDOWN.
            // A panic's STOP comes with its GUEST_PANICKED (the monitor sends both).
            vm.StateChanged += state => { if (state == VmState.Stopped && vm.StopResult?.Reason is not (VmStopReason.HostRequest or VmStopReason.GuestPanic or null)) monitor.Broadcast("STOP", null); };
        }
        WritePidFile(q.PidFile);
        try
        {
            // Before the manager hears "ready": nothing it asks afterwards runs unfiltered.
            if (q.Sandbox) ProcessSandbox.Install();
            if (readyFd >= 0) QemuDaemon.SignalReady(readyFd);
            bool start = !q.Paused;
            if (q.Incoming is not null)
            {
                try { start = IncomingMigration.Receive(vm, migration, q.Incoming) && (start || monitor?.Monitor.StartAfterIncoming == true); }
                catch (MigrationException ex)
                {
                    Console.Error.WriteLine(Message(q, $"incoming migration failed: {ex.Message}"));
                    return 1;
                }
            }
            if (start && vm.State == VmState.Created)
            {
                if (q.Incoming is not null) migration.ActivateDisks();
                vm.Start();
            }
            var waitFor = new List<Task> { terminate.Task };
            if (monitor is not null) waitFor.Add(monitor.QuitTask);
            if (!q.NoShutdown) waitFor.Add(vm.Exited);
            Task.WaitAny([.. waitFor]);
            vm.Stop(); // also ends a VM kept after the guest stopped it (-no-shutdown)
            var result = vm.StopResult ?? vm.Exited.GetAwaiter().GetResult();
            FlushDisks(vm);
            if (result.IsError) Console.Error.WriteLine(Message(q, result.Message));
            return terminate.Task.IsCompleted || q.NoShutdown ? 0 : result.ExitCode;
        }
        finally
        {
            if (q.PidFile is not null) TryDelete(q.PidFile);
        }
    }

    /// <summary>
    /// Writes every disk's cached metadata (qcow2 L1/L2/refcount updates) to its file before anything else is torn
    /// down, as QEMU flushes all block devices when it stops. A guest's raw-device writes need no FLUSH from the
    /// guest to be "done" for it, and a manager follows SIGTERM with SIGKILL if the exit takes long: without this,
    /// writes the guest had completed were lost with the cache (seen under libvirt after virsh shutdown).
    /// </summary>
    private static void FlushDisks(VirtualMachine vm)
    {
        foreach (var (id, blk) in vm.Devices.OfType<SharpVmm.Devices.Virtio.Blk.VirtioBlk>())
            blk.WaitIdle(TimeSpan.FromSeconds(30));
        foreach (var (id, image) in vm.Devices.OfType<SharpVmm.Block.IBlockImage>())
        {
            // A source that migrated away closed its disks for the target: nothing of them is cached here.
            if (image is MigratableImage { IsActive: false }) continue;
            try { image.Flush(); }
            catch (Exception ex) when (ex is IOException or VmmException or ObjectDisposedException)
            {
                Console.Error.WriteLine($"sharpvmm: {id}: flushing the disk failed: {ex.Message}");
            }
        }
    }

    /// <summary>The monitor's chardev (or -qmp address); every other chardev must be some device's.</summary>
    private static QemuMonitor? CheckChardevs(QemuInvocation q)
    {
        if (q.Monitors.Count > 1) throw new QemuArgException(q.Monitors[1].ChardevId is null ? "-qmp" : "-mon", "SharpVmm serves one QMP monitor per VM");
        var monitor = q.Monitors.Count == 1 ? q.Monitors[0] : null;
        if (monitor?.ChardevId is { } id)
        {
            if (!q.Chardevs.TryGetValue(id, out var c)) throw new QemuArgException("-mon", $"chardev '{id}' is not defined");
            if (c.Backend != "socket") throw new QemuArgException("-mon", $"chardev '{id}': SharpVmm's monitor is on a socket (backend {c.Backend} is not supported)");
        }
        foreach (var (cid, _) in q.Chardevs)
            if (cid != monitor?.ChardevId && cid != q.SerialChardev)
                throw new QemuArgException("-chardev", $"'{cid}' is not used by any device or monitor");
        if (q.Paused && monitor is null) throw new QemuArgException("-S", "needs a QMP monitor (-qmp or -mon): only its cont can start the VM");
        return monitor;
    }

    private static QmpServer StartMonitor(QemuInvocation q, VirtualMachine vm, QemuMonitor spec, QmpServerOptions options, out string filename)
    {
        if (spec.Address is { } address)
        {
            var server = QmpServer.Start(vm, address, options);
            filename = server.Address + ",server=on";
            return server;
        }
        var c = q.Chardevs[spec.ChardevId!];
        if (c.Path is not null)
        {
            var server = QmpServer.Start(vm, "unix:" + c.Path, options);
            filename = $"unix:{c.Path},server=on";
            return server;
        }
        Socket listener;
        try
        {
            listener = new Socket(new SafeSocketHandle((nint)c.Fd!.Value, ownsHandle: true));
        }
        catch (SocketException ex)
        {
            throw new QemuArgException("-chardev", $"'{c.Id}': fd={c.Fd} is not an open socket: {ex.Message}");
        }
        if (listener.SocketType != SocketType.Stream)
            throw new QemuArgException("-chardev", $"'{c.Id}': fd={c.Fd} is not a stream socket");
        filename = "unix:" + (listener.LocalEndPoint?.ToString() ?? "") + ",server=on";
        return QmpServer.StartOnListener(vm, listener, options);
    }

    private static void WritePidFile(string? path)
    {
        if (path is null) return;
        try
        {
            File.WriteAllText(path, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new QemuArgException("-pidfile", $"cannot write '{path}': {ex.Message}");
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
    }
}
