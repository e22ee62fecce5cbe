using System.CommandLine;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Core;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Migration;
using SharpVmm.Machine.Sandbox;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Cli.Run;

/// <summary><c>sharpvmm run</c>: build a VM from options, run it to the end, exit with the guest's code.</summary>
public static class RunCommand
{
    public static Command Create()
    {
        var accel = new Option<string>("--accel") { Description = "Accelerator: kvm, emu (our x86-64 CPU) or auto (KVM where /dev/kvm is usable, else emu, saying why); tb-size caps emu's decoded-code cache (MiB, 0 = unbounded); jit= turns emu's translation of hot code to host code on, off or forced (every block), jit-threshold= sets how hot; hypervisor=off hides emu's hypervisor CPUID leaves (then Linux keeps xAPIC mode)", DefaultValueFactory = _ => "auto", HelpName = AccelSpec.Syntax };
        // Checked while parsing, so a bad value is blamed on --accel (or on the config file's "accel" key).
        accel.Validators.Add(r =>
        {
            try { AccelSpec.Parse(r.GetValueOrDefault<string>() ?? ""); }
            catch (ConfigurationException e) { r.AddError(e.Message); }
        });
        var memory = new Option<string>("--memory", "-m") { Description = "Guest RAM, e.g. 256M or 2G (no suffix: MiB); merge=off leaves it out of KSM, hugepages=on asks for THP, prealloc=on backs it up front", DefaultValueFactory = _ => "256M", HelpName = MemorySpec.Syntax };
        var cpus = new Option<int>("--cpus") { Description = "Number of vCPUs", DefaultValueFactory = _ => 1, HelpName = "N" };
        var kernel = new Option<string?>("--kernel") { Description = "Linux bzImage or Multiboot (ELF32) kernel to boot", HelpName = "FILE" };
        var initrd = new Option<string?>("--initrd") { Description = "Initial ramdisk for --kernel", HelpName = "FILE" };
        var append = new Option<string?>("--append") { Description = "Kernel command line (default: console=ttyS0)", HelpName = "TEXT" };
        var flat = new Option<string?>("--flat") { Description = "Raw binary loaded at a guest-physical address, e.g. hello.bin@0x1000", HelpName = "FILE@ADDR" };
        var entry = new Option<string>("--entry-mode") { Description = "CPU mode a --flat binary starts in", DefaultValueFactory = _ => "real", HelpName = "real|protected|long" };
        entry.AcceptOnlyFromAmong("real", "protected", "long");
        var disk = new Option<string[]>("--disk") { Description = "A virtio-blk disk (repeatable): PATH[,format=raw|qcow2][,readonly=on][,iothread=off]", HelpName = "PATH[,format=...][,readonly=on]", AllowMultipleArgumentsPerToken = false };
        var rng = new Option<bool>("--rng") { Description = "Add a virtio-rng device fed from the host's random number generator" };
        var net = new Option<string[]>("--net") { Description = "A virtio-net NIC (repeatable): tap,ifname=NAME or user (libslirp; the gateway 10.0.2.2 is the host's loopback), each with [,mac=52:54:00:xx:xx:xx]", HelpName = "tap,ifname=NAME|user[,mac=MAC]", AllowMultipleArgumentsPerToken = false };
        var console = new Option<string?>("--console") { Description = "Add a virtio-console (the guest's /dev/hvc0) on stdio, file:PATH, unix:PATH (we listen) or none", HelpName = "stdio|file:PATH|unix:PATH|none" };
        var balloon = new Option<string?>("--balloon") { Description = "Add a virtio-balloon device (target set with QMP balloon); deflate-on-oom=on lets the guest take pages back under memory pressure", HelpName = "deflate-on-oom=on|off", Arity = ArgumentArity.ZeroOrOne };
        var qmp = new Option<string?>("--qmp") { Description = "QMP monitor: unix:PATH or tcp:127.0.0.1:PORT (loopback only)", HelpName = "unix:PATH|tcp:HOST:PORT" };
        var noReboot = new Option<bool>("--no-reboot") { Description = "When the guest resets (e.g. Linux's reboot), exit with code 0 instead of rebooting it, like QEMU's -no-reboot" };
        var restore = new Option<string?>("--restore") { Description = "Continue the guest saved in a snapshot file (snapshot-save); give the options it was started with", HelpName = "FILE" };
        var incoming = new Option<string?>("--incoming") { Description = "Wait for a live migration instead of booting: tcp:HOST:PORT, or defer (QMP migrate-incoming gives the address)", HelpName = "tcp:HOST:PORT|defer" };
        var paused = new Option<bool>("--paused", "-S") { Description = "Build the VM but leave its vCPUs stopped until QMP cont (QEMU's -S; query-status says prelaunch); needs --qmp" };
        var device = new Option<string[]>("--device") { Description = "An optional test device (repeatable), as QEMU's -device: pc-testdev, or isa-debug-exit[,iobase=PORT][,iosize=N] to move the debug-exit port from 0xF4", HelpName = DeviceSpec.Syntax, AllowMultipleArgumentsPerToken = false };
        var sandbox = new Option<string>("--sandbox") { Description = "Once the VM is built, allow the process only the system calls a VMM needs (seccomp-BPF, as QEMU's -sandbox on); a refused call ends the process with a line naming it. Default on (SHARPVMM_SANDBOX=off changes the default)", DefaultValueFactory = _ => SandboxOption.Default(), HelpName = "on|off" };
        sandbox.AcceptOnlyFromAmong("on", "off");
        var serial = new Option<string>("--serial") { Description = "Where COM1 goes: stdio, file:PATH, unix:PATH (we listen) or none", DefaultValueFactory = _ => "stdio", HelpName = "stdio|file:PATH|unix:PATH" };

        var cmd = new Command("run", "Boot a guest and run it until it powers off; the exit code is the guest's (debug-exit port) or 0.")
        {
            accel, memory, cpus, kernel, initrd, append, flat, entry, serial, disk, rng, balloon, net, console, qmp, restore, incoming,
        };
        cmd.Add(device);
        cmd.Add(noReboot);
        cmd.Add(paused);
        cmd.Add(sandbox);
        var configFile = ConfigFileOption.AddTo(cmd);
        cmd.SetAction(pr =>
        {
            pr = configFile.Apply(pr);
            VmConfig config;
            try { config = Configure(pr); }
            catch (ConfigurationException e)
            {
                // A value the options do not accept is a bad command line, as a parse error is.
                Console.Error.WriteLine($"sharpvmm: {e.Message}");
                return 2;
            }
            // Not a bad command line but a missing setup step: a VMM error (exit 1).
            if (config.Kernel is null && config.Flat is null && config.Initrd is null && config.Append is null)
                config = DefaultGuest.Apply(config);
            return Execute(config, pr.GetValue(qmp), pr.GetValue(restore), pr.GetValue(incoming), pr.GetValue(paused), pr.GetValue(sandbox) == "on");
        });
        return cmd;

        VmConfig Configure(ParseResult pr)
        {
            var config = new VmConfig
            {
                Accelerator = AccelSpec.Parse(pr.GetValue(accel)!).Kind,
                CodeCacheBytes = AccelSpec.Parse(pr.GetValue(accel)!).CodeCacheBytes,
                Jit = AccelSpec.Parse(pr.GetValue(accel)!).Jit,
                JitThreshold = AccelSpec.Parse(pr.GetValue(accel)!).JitThreshold,
                HypervisorLeaves = AccelSpec.Parse(pr.GetValue(accel)!).HypervisorLeaves,
                MemoryBytes = MemorySpec.Parse(pr.GetValue(memory)!).Bytes,
                MemoryOptions = MemorySpec.Parse(pr.GetValue(memory)!).Options,
                Cpus = pr.GetValue(cpus),
                Kernel = pr.GetValue(kernel),
                Initrd = pr.GetValue(initrd),
                Append = pr.GetValue(append),
                Flat = pr.GetValue(flat) is { } f ? FlatImageSpec.Parse(f, Enum.Parse<EntryMode>(pr.GetValue(entry)!, ignoreCase: true)) : null,
                Serial = pr.GetValue(serial)!,
                Disks = [.. (pr.GetValue(disk) ?? []).Select(DiskSpec.Parse)],
                Rng = pr.GetValue(rng),
                TestDevices = [.. (pr.GetValue(device) ?? []).Select(DeviceSpec.Parse)],
                Nets = [.. (pr.GetValue(net) ?? []).Select(NetSpec.Parse)],
                Console = pr.GetValue(console),
                NoReboot = pr.GetValue(noReboot),
                IncomingMigration = pr.GetValue(incoming) is not null,
                Balloon = pr.GetResult(balloon) is not null,
                BalloonDeflateOnOom = BalloonOption.DeflateOnOom(pr.GetValue(balloon)),
            };
            return config;
        }
    }

    public static int Execute(VmConfig config, string? qmpAddress = null, string? restore = null, string? incoming = null, bool paused = false, bool sandbox = false)
    {
        if (restore is not null && incoming is not null)
        {
            Console.Error.WriteLine("sharpvmm: --restore and --incoming are alternatives: give one");
            return 2;
        }
        if (paused && qmpAddress is null)
        {
            // Without a monitor nothing could ever start the vCPUs: refuse rather than sit there forever.
            Console.Error.WriteLine("sharpvmm: --paused needs --qmp: only QMP's cont can start the VM");
            return 2;
        }
        try { CommandLineChecks.Check(config, restore, qmpAddress); }
        catch (ConfigurationException e)
        {
            Console.Error.WriteLine($"sharpvmm: {e.Message}");
            return 2;
        }
        using var loggers = Logging.CreateFactory();
        string? choice = null;
        if (config.Accelerator == AcceleratorKind.Auto)
        {
            config.Validate();
            var (kind, why) = AcceleratorChoice.Resolve(config);
            choice = $"sharpvmm: using the {kind.ToString().ToLowerInvariant()} accelerator: {why}";
            config = config with { Accelerator = kind };
        }
        using var vm = VmBuilder.Build(config, loggers);
        // Said only once the VM exists, so a bad option still yields exactly one line on stderr.
        if (choice is not null) Console.Error.WriteLine(choice);
        if (restore is not null) RestoreSnapshot.Apply(vm, restore);
        var migration = incoming is null ? null : new MigrationManager(vm, loggers);
        migration?.ExpectIncoming();
        // Declared after the VM so it is disposed first: clients get their last replies and events.
        using var monitor = qmpAddress is null ? null
            : QmpServer.Start(vm, qmpAddress, new QmpServerOptions { Logger = loggers.CreateLogger("SharpVmm.Qmp"), Migration = migration });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; vm.Stop(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; vm.Stop(); });
        // Everything the VM needs from the host is open now; what comes later (QMP clients, snapshot and migration
        // files, disk I/O) uses calls the filter allows.
        if (sandbox) ProcessSandbox.Install();
        bool start = true;
        if (migration is not null)
        {
            try { start = IncomingMigration.Receive(vm, migration, incoming!); }
            catch (MigrationException ex)
            {
                Console.Error.WriteLine($"sharpvmm: incoming migration failed: {ex.Message}");
                return 1;
            }
        }
        // With --paused the VM stays in prelaunch (after a restore, or after an incoming migration, as QEMU's -S
        // keeps a migrated guest stopped) until a QMP client says cont.
        if (start && !paused) vm.Start();
        var result = vm.Exited.GetAwaiter().GetResult();
        if (result.IsError) Console.Error.WriteLine($"sharpvmm: {result.Message}");
        return result.ExitCode;
    }
}
