using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Block;
using SharpVmm.Core;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Interrupts;
using SharpVmm.Devices.Legacy;
using SharpVmm.Devices.Serial;
using SharpVmm.Devices.Timers;
using SharpVmm.Devices.Virtio.Blk;
using SharpVmm.Devices.Virtio.Rng;
using SharpVmm.Emulator;
using SharpVmm.Kvm;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.Migration;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Board;

/// <summary>
/// Assembles a <see cref="VirtualMachine"/> from a <see cref="VmConfig"/>: RAM, bus, accelerator, platform
/// devices, boot payload. The one place that knows how the parts fit, so nothing below it reads the command line.
/// </summary>
public static partial class VmBuilder
{
    public static VirtualMachine Build(VmConfig config, ILoggerFactory? loggers = null)
    {
        loggers ??= NullLoggerFactory.Instance;
        var log = loggers.CreateLogger("SharpVmm.Machine");
        config.Validate();
        var (kind, why) = AcceleratorChoice.Resolve(config);
        log.LogInformation("accelerator: {Kind} ({Why})", kind.ToString().ToLowerInvariant(), why);
        if (config.EmptyMachine) return BuildEmpty(config, kind, log);

        var parts = new MachineParts(config, loggers, log);
        try
        {
            OpenPayload(parts);
            parts.Memory = CreateGuestMemory(config, log);
            CreateAccelerator(parts, kind);
            AddConsoleAndControlPorts(parts);
            if (parts.Platform) AddPcPlatform(parts);
            var vm = new VirtualMachine(parts.Memory, parts.Bus, parts.Accelerator!, config.Cpus, PayloadLoader(parts, kind), parts.Clock, log);
            AttachToVm(parts, vm);
            return vm;
        }
        catch
        {
            parts.DisposeAll();
            throw;
        }
    }

    /// <summary>
    /// The bus and the accelerator; under the emulator with a kernel to boot, also the PC interrupt controllers and
    /// timers that KVM would otherwise provide in the kernel (PICs, IOAPIC, a LAPIC per vCPU, PIT).
    /// </summary>
    private static void CreateAccelerator(MachineParts parts, AcceleratorKind kind)
    {
        var config = parts.Config;
        parts.Bus = new IoBus(parts.Loggers.CreateLogger("SharpVmm.IoBus")) { UnmappedPolicy = config.UnmappedAccess };
        if (kind == AcceleratorKind.Emu && parts.Platform)
        {
            parts.Timers = new TimerService(parts.Clock);
            parts.Disposables.Add(parts.Timers);
            parts.IrqChip = new EmulatedIrqChip(parts.Timers, config.Cpus);
        }
        var irqChip = parts.IrqChip;
        parts.Accelerator = kind switch
        {
            AcceleratorKind.Kvm => KvmAccelerator.Create(parts.Memory!, parts.Bus, new KvmOptions { IrqChip = parts.Platform, VcpuCount = config.Cpus }),
            _ => new EmuAccelerator(parts.Memory!, parts.Bus, new EmuOptions
            {
                Clock = parts.Clock,
                LocalApicFactory = irqChip is null ? null : irqChip.LocalApicFor,
                IrqRouter = irqChip,
                CodeCacheBudgetBytes = config.CodeCacheBytes ?? EmuOptions.DefaultCodeCacheBudgetBytes,
                Jit = config.Jit ?? EmuOptions.DefaultJit,
                JitThreshold = config.JitThreshold ?? EmuOptions.DefaultJitThreshold,
                HypervisorLeaves = config.HypervisorLeaves ?? true,
                Logger = parts.Loggers.CreateLogger("SharpVmm.Emulator"),
            }),
        };
        parts.Board = new PcBoard(parts.Memory!, parts.Bus, parts.Named, parts.Loggers) { Irqs = parts.Accelerator.IrqRouter };
    }

    /// <summary>
    /// What every machine has, flat ones included: COM1 on the <c>--serial</c> backend (a Linux guest's watched for a
    /// kernel panic, which ends the run: see <see cref="GuestPanicWatcher"/>), the i8042's reset line, the test
    /// devices and pvpanic.
    /// </summary>
    private static void AddConsoleAndControlPorts(MachineParts parts)
    {
        var board = parts.Board;
        parts.SerialBackend = CharBackendSpec.Parse(parts.Config.Serial).Create();
        parts.PanicWatcher = parts.Linux ? new GuestPanicWatcher(parts.SerialBackend) : null;
        parts.Disposables.Add(board.AddCom1(parts.PanicWatcher ?? parts.SerialBackend));
        board.AddI8042(parts.Control);
        AddTestDevices(parts.Config, parts.Bus, board.Irqs, parts.Control, parts.Named);
        if (PvPanicDevice(parts.Config) is { } pvpanic)
        {
            // A panic the guest reports ends the run as one its console shows does (QEMU's default panic action);
            // a crash kernel taking over is only logged.
            board.AddPvPanic(pvpanic.IoBase, events =>
            {
                if ((events & PvPanicPort.Panicked) != 0)
                    parts.Vm?.StopWith(VmExitResult.GuestPanic(parts.PanicWatcher?.PanicLine ?? "reported through pvpanic"));
                else parts.Log.LogWarning("the guest reported a crash through pvpanic; its crash kernel takes over");
            });
        }
    }

    /// <summary>The PC platform a kernel boots on: interrupt controllers (emulator), RTC, ACPI, fw_cfg, virtio devices, and the ACPI tables that describe them.</summary>
    private static void AddPcPlatform(MachineParts parts)
    {
        var (config, board) = (parts.Config, parts.Board);
        if (parts.IrqChip is not null && parts.Timers is not null) board.AddInterruptControllers(parts.IrqChip, parts.Timers);
        if (parts.Timers is null)
        {
            parts.Timers = new TimerService(parts.Clock);
            parts.Disposables.Add(parts.Timers);
        }
        board.AddRtc(parts.Timers, config.MemoryBytes);
        board.AddAcpiSleep(parts.Control);
        parts.PowerButton = board.AddPowerButton();
        board.AddFirmwareInterfaces(config.Cpus, config.MemoryBytes, parts.Multiboot ? MultibootCommandLine(config) : config.Append);
        AddVirtioDevices(config, parts.Memory!, board, parts.Disposables, parts.Named, parts.Loggers);
        parts.Rsdp = board.WriteAcpiTables(config.Cpus, parts.IrqChip?.IoApic.Id ?? 0);
    }

    /// <summary>Hands the parts to the VM: its device registry, console quit key, panic and reset policies, timer re-arming, and what it must dispose.</summary>
    private static void AttachToVm(MachineParts parts, VirtualMachine vm)
    {
        parts.Control.Target = vm;
        parts.Vm = vm;
        foreach (var (id, device) in parts.Named) vm.Devices.Add(id, device);
        vm.Devices.SerialBackend = parts.SerialBackend;
        // Ctrl-A x on a stdio console stops the VM as a host request (off the input thread: Stop joins vCPUs).
        if (parts.SerialBackend is StdioBackend stdio) stdio.QuitRequested = () => Task.Run(vm.Stop);
        if (parts.PanicWatcher is { } panicWatcher)
        {
            vm.ResetPolicy = () => panicWatcher.PanicLine is { } line ? VmExitResult.GuestPanic(line) : null;
            vm.OnReset(panicWatcher.Reset);
            // panic=0: no reset ever comes; the closing banner is the last word. Stopped off the vCPU thread,
            // which is inside the UART's write.
            panicWatcher.PanicEnded += line => ThreadPool.QueueUserWorkItem(_ => vm.StopWith(VmExitResult.GuestPanic(line)));
        }
        if (parts.PowerButton is { } ged) vm.OnReset(ged.Reset);
        ApplyRebootPolicy(vm, parts.Config);
        if (parts.Timers is { } timers)
        {
            // Deadlines were computed against a clock that stood still while paused: re-arm them.
            vm.StateChanged += state => { if (state == VmState.Running) timers.Kick(); };
        }
        foreach (var d in parts.Disposables) vm.Own(d);
    }

    /// <summary>The virtio devices the options ask for, each in the board's next virtio-mmio slot: disks, rng, NICs, console, balloon.</summary>
    private static void AddVirtioDevices(VmConfig config, GuestMemory memory, PcBoard board,
        List<IDisposable> disposables, List<VmDevice> named, ILoggerFactory loggers)
    {
        var add = board.AddVirtio;
        for (int i = 0; i < config.Disks.Count; i++)
        {
            var d = config.Disks[i];
            IBlockImage image;
            try
            {
                var options = new ImageOpenOptions { Format = d.Format, ReadOnly = d.ReadOnly };
                image = config.IncomingMigration ? MigratableImage.OpenInactive(d.Path, options) : MigratableImage.OpenActive(d.Path, options);
            }
            catch (BlockImageException ex)
            {
                throw new ConfigurationException($"--disk {d.Path}: {ex.Message}");
            }
            disposables.Add(image);
            var blk = new VirtioBlk(image, serial: $"sharpvmm-disk{i}", readOnly: d.ReadOnly, loggers.CreateLogger("SharpVmm.VirtioBlk"), ioThread: d.IoThread);
            disposables.Add(blk); // the VM disposes in reverse: the worker stops before the image closes
            add(blk, $"virtio-blk{i}");
            named.Add(new($"virtio-blk{i}.drive", new BlockDeviceInfo($"virtio{i}", $"virtio-blk{i}", d, image) { Stats = blk.Stats }));
            named.Add(new($"virtio-blk{i}.image", image)); // migration hands the image file over through this
        }
        if (config.Rng) add(new VirtioRng(), "virtio-rng");
        AddNetDevices(config, add, disposables, loggers);
        if (CreateConsole(config, disposables) is { } console) add(console, "virtio-console");
        AddBalloon(config, memory, add, loggers);
    }

    /// <summary>QEMU's none machine: RAM, an empty bus and vCPUs at their power-on state (nothing loaded, nothing to run).</summary>
    private static VirtualMachine BuildEmpty(VmConfig config, AcceleratorKind kind, ILogger log)
    {
        GuestMemory? memory = null;
        IAccelerator? accel = null;
        try
        {
            memory = CreateGuestMemory(config, log);
            var bus = new IoBus() { UnmappedPolicy = config.UnmappedAccess };
            var clock = new GuestClock();
            accel = kind switch
            {
                AcceleratorKind.Kvm => KvmAccelerator.Create(memory, bus, new KvmOptions { IrqChip = false, VcpuCount = config.Cpus }),
                _ => new EmuAccelerator(memory, bus, new EmuOptions { Clock = clock }),
            };
            return new VirtualMachine(memory, bus, accel, config.Cpus, () => [], clock, log); // it disposes both
        }
        catch
        {
            accel?.Dispose();
            memory?.Dispose();
            throw;
        }
    }

}
