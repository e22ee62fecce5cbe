using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Acpi;
using SharpVmm.Boot.Linux;
using SharpVmm.Boot.Multiboot;
using SharpVmm.Core;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Acpi;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Interrupts;
using SharpVmm.Devices.Rtc;
using SharpVmm.Devices.Timers;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Blk;
using SharpVmm.Devices.Virtio.Rng;
using SharpVmm.Block;
using SharpVmm.Devices.Legacy;
using SharpVmm.Devices.Firmware;
using SharpVmm.Devices.Pci;
using SharpVmm.Devices.Testing;
using SharpVmm.Devices.Serial;
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

        // Read the payload before anything is mapped, so a bad file fails fast and cheaply.
        byte[]? flat = config.Kernel is null ? ReadFile(config.Flat!.Path, "flat binary") : null;
        var disposables = new List<IDisposable>();
        BootFile? kernel = null, initrd = null;
        bool multiboot = false;
        try
        {
            if (config.Kernel is not null)
            {
                disposables.Add(kernel = BootFile.Open(config.Kernel, "kernel"));
                // A Multiboot header wins (test kernels are ELF files, which the bzImage check would refuse);
                // either way a bad image is an error before any vCPU exists.
                using var bytes = kernel.Read();
                multiboot = MultibootLoader.IsMultiboot(bytes.Memory.Span);
                if (multiboot) Elf32Image.Parse(bytes.Memory.Span);
                else SetupHeader.Parse(bytes.Memory.Span);
            }
            if (config.Initrd is not null) disposables.Add(initrd = BootFile.Open(config.Initrd, "initrd"));
        }
        catch
        {
            foreach (var d in disposables) d.Dispose();
            throw;
        }

        GuestMemory? memory = null;
        IAccelerator? accel = null;
        try
        {
            memory = CreateGuestMemory(config, log);
            var bus = new IoBus(loggers.CreateLogger("SharpVmm.IoBus")) { UnmappedPolicy = config.UnmappedAccess };
            var clock = new GuestClock();
            var control = new DeferredVmControl();
            // Named for VirtualMachine.Devices once the VM exists (monitor commands, snapshots, migration).
            var named = new List<(string Id, object Device)>();

            // A kernel (Linux or Multiboot) gets the whole PC platform; a flat binary gets a bare machine.
            bool platform = config.Kernel is not null;
            bool linux = platform && !multiboot;
            EmulatedIrqChip? irqChip = null;
            TimerService? timers = null;
            if (kind == AcceleratorKind.Emu && platform)
            {
                // The PC platform KVM would otherwise provide in the kernel: PICs, IOAPIC, a LAPIC per vCPU, PIT.
                timers = new TimerService(clock);
                disposables.Add(timers);
                irqChip = new EmulatedIrqChip(timers, config.Cpus);
            }
            accel = kind switch
            {
                AcceleratorKind.Kvm => KvmAccelerator.Create(memory, bus, new KvmOptions { IrqChip = platform, VcpuCount = config.Cpus }),
                _ => new EmuAccelerator(memory, bus, new EmuOptions
                {
                    Clock = clock,
                    LocalApicFactory = irqChip is null ? null : irqChip.LocalApicFor,
                    IrqRouter = irqChip,
                    CodeCacheBudgetBytes = config.CodeCacheBytes ?? EmuOptions.DefaultCodeCacheBudgetBytes,
                    Jit = config.Jit ?? EmuOptions.DefaultJit,
                    JitThreshold = config.JitThreshold ?? EmuOptions.DefaultJitThreshold,
                    HypervisorLeaves = config.HypervisorLeaves ?? true,
                    Logger = loggers.CreateLogger("SharpVmm.Emulator"),
                }),
            };
            var board = new PcBoard(memory, bus, named, loggers) { Irqs = accel.IrqRouter };
            // A Linux guest's console is watched for a kernel panic, which ends the run (see GuestPanicWatcher).
            var backend = CharBackendSpec.Parse(config.Serial).Create();
            var panicWatcher = linux ? new GuestPanicWatcher(backend) : null;
            disposables.Add(board.AddCom1(panicWatcher ?? backend));
            board.AddI8042(control);
            AddTestDevices(config, bus, board.Irqs, control, named);

            ulong? rsdp = null;
            AcpiGed? ged = null;
            DeviceSpec? pvpanic = null;
            foreach (var d in config.TestDevices) if (d.Driver == DeviceSpec.PvPanic) pvpanic = d;
            GuestPanicWatcher? panicSource = null;
            VirtualMachine? built = null;
            if (pvpanic is not null)
            {
                // A panic the guest reports ends the run as one its console shows does (QEMU's default panic action);
                // a crash kernel taking over is only logged.
                bus.RegisterPort(pvpanic.IoBase, 1, new PvPanicPort(events =>
                {
                    if ((events & PvPanicPort.Panicked) != 0)
                        built?.StopWith(VmExitResult.GuestPanic(panicSource?.PanicLine ?? "reported through pvpanic"));
                    else log.LogWarning("the guest reported a crash through pvpanic; its crash kernel takes over");
                }), "pvpanic");
            }
            if (platform)
            {
                if (irqChip is not null && timers is not null) board.AddInterruptControllers(irqChip, timers);
                if (timers is null) { timers = new TimerService(clock); disposables.Add(timers); }
                board.AddRtc(timers, config.MemoryBytes);
                board.AddAcpiSleep(control);
                ged = board.AddPowerButton();
                board.AddFirmwareInterfaces(config.Cpus, config.MemoryBytes, multiboot ? MultibootCommandLine(config) : config.Append);
                AddVirtioDevices(config, memory, board, disposables, named, loggers);
                rsdp = board.WriteAcpiTables(config.Cpus, irqChip?.IoApic.Id ?? 0, pvpanic?.IoBase);
            }

            Func<VcpuState[]> load = multiboot
                ? MultibootPayload(memory, kernel!, initrd, config)
                : linux
                ? LinuxPayload(memory, kernel!, initrd, KernelCommandLine(config, kind == AcceleratorKind.Emu ? clock : null), rsdp)
                : FlatPayload(memory, flat!, config.Flat!, config.Cpus);

            var vm = new VirtualMachine(memory, bus, accel, config.Cpus, load, clock, log);
            control.Target = vm;
            built = vm;
            panicSource = panicWatcher;
            foreach (var (id, device) in named) vm.Devices.Add(id, device);
            vm.Devices.SerialBackend = backend;
            // Ctrl-A x on a stdio console stops the VM as a host request (off the input thread: Stop joins vCPUs).
            if (backend is StdioBackend stdio) stdio.QuitRequested = () => Task.Run(vm.Stop);
            if (panicWatcher is not null)
            {
                vm.ResetPolicy = () => panicWatcher.PanicLine is { } line ? VmExitResult.GuestPanic(line) : null;
                vm.OnReset(panicWatcher.Reset);
                // panic=0: no reset ever comes; the closing banner is the last word. Stopped off the vCPU thread,
                // which is inside the UART's write.
                panicWatcher.PanicEnded += line => ThreadPool.QueueUserWorkItem(_ => vm.StopWith(VmExitResult.GuestPanic(line)));
            }
            if (ged is not null) vm.OnReset(ged.Reset);
            ApplyRebootPolicy(vm, config);
            if (timers is not null)
            {
                var t = timers;
                // Deadlines were computed against a clock that stood still while paused: re-arm them.
                vm.StateChanged += state => { if (state == VmState.Running) t.Kick(); };
            }
            foreach (var d in disposables) vm.Own(d);
            return vm;
        }
        catch
        {
            foreach (var d in disposables) d.Dispose();
            accel?.Dispose();
            memory?.Dispose();
            throw;
        }
    }

    /// <summary>The virtio devices the options ask for, each in the board's next virtio-mmio slot: disks, rng, NICs, console, balloon.</summary>
    private static void AddVirtioDevices(VmConfig config, GuestMemory memory, PcBoard board,
        List<IDisposable> disposables, List<(string Id, object Device)> named, ILoggerFactory loggers)
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
            named.Add(($"virtio-blk{i}.drive", new BlockDeviceInfo($"virtio{i}", $"virtio-blk{i}", d, image) { Stats = blk.Stats }));
            named.Add(($"virtio-blk{i}.image", image)); // migration hands the image file over through this
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

    private static Func<VcpuState[]> FlatPayload(GuestMemory memory, byte[] image, FlatImageSpec flat, int cpus) => () =>
    {
        // Every vCPU of a flat guest starts at the entry point; the guest tells them apart with CPUID's APIC ID.
        var bsp = FlatLoader.Load(memory, image, flat.Address, flat.Mode);
        var states = new VcpuState[cpus];
        for (int i = 0; i < cpus; i++) states[i] = i == 0 ? bsp : bsp.Clone();
        return states;
    };

    private static Func<VcpuState[]> LinuxPayload(GuestMemory memory, BootFile kernel, BootFile? initrd, string commandLine, ulong? rsdp) => () =>
    {
        using var kernelBytes = kernel.Read();
        using var initrdBytes = initrd?.Read();
        // Only the bootstrap processor starts at the kernel entry; application processors wait for INIT/SIPI.
        var bsp = LinuxLoader.Load(memory, new LinuxBootSpec
        {
            Kernel = kernelBytes.Memory,
            Initrd = initrdBytes?.Memory,
            CommandLine = commandLine,
            AcpiRsdp = rsdp,
        });
        return [bsp];
    };

    private static string MultibootCommandLine(VmConfig config) => new MultibootBootSpec { Kernel = default, KernelPath = config.Kernel!, Append = config.Append }.CommandLine;

    private static Func<VcpuState[]> MultibootPayload(GuestMemory memory, BootFile kernel, BootFile? initrd, VmConfig config) => () =>
    {
        using var kernelBytes = kernel.Read();
        using var initrdBytes = initrd?.Read();
        // As for Linux: the bootstrap processor starts at the entry, the others wait for INIT/SIPI.
        var bsp = MultibootLoader.Load(memory, new MultibootBootSpec
        {
            Kernel = kernelBytes.Memory,
            KernelPath = config.Kernel!,
            Append = config.Append,
            Module = initrdBytes?.Memory,
            ModulePath = config.Initrd,
        });
        return [bsp];
    };

    /// <summary>
    /// The debug-exit port (at 0xF4, one port, unless <c>--device isa-debug-exit</c> moves or widens it) and
    /// pc-testdev when asked for.
    /// </summary>
    private static void AddTestDevices(VmConfig config, IoBus bus, IIrqRouter? irqs, IVmControl control, List<(string Id, object Device)> named)
    {
        ushort exitBase = DebugExitPort.DefaultPort, exitSize = 1;
        foreach (var d in config.TestDevices)
            if (d.Driver == DeviceSpec.IsaDebugExit) (exitBase, exitSize) = (d.IoBase, d.IoSize);
        bus.RegisterPort(exitBase, exitSize, new DebugExitPort(control), "debug-exit");
        foreach (var d in config.TestDevices)
        {
            if (d.Driver != DeviceSpec.PcTestDev) continue;
            var t = new PcTestDev(irqs);
            bus.RegisterPort(PcTestDev.DataPort, 4, t.Data, "pc-testdev");
            bus.RegisterPort(PcTestDev.FlushPort, 4, t.Flush, "pc-testdev-flush-page");
            bus.RegisterPort(PcTestDev.ByteDataPort, 4, t.Data, "pc-testdev-byte");
            // The interrupt lines need interrupt controllers: a flat guest's machine has none.
            if (irqs is not null) bus.RegisterPort(PcTestDev.IrqPort, PcTestDev.IrqLines, t.Irq, "pc-testdev-irq");
            bus.RegisterMmio(PcTestDev.IomemBase, PcTestDev.IomemSize, t.Iomem, "pc-testdev-iomem");
            named.Add(("pc-testdev", t));
        }
    }

    /// <summary>
    /// The guest's command line: the user's (default <c>console=ttyS0</c>) plus what the VMM knows about its
    /// platform (<see cref="RebootOption"/>) and about time.
    /// A software CPU must not make Linux calibrate the TSC with a timing loop (it fails when the host is
    /// loaded), so the TSC rate the guest's RDTSC counts at is given as <c>tsc_early_khz</c>, and <c>tsc=reliable</c>
    /// keeps the clocksource watchdog from dropping a TSC that is derived from the host's monotonic clock.
    /// Options the user already set win.
    /// </summary>
    public static string KernelCommandLine(VmConfig config, GuestClock? emulatedTsc)
    {
        string user = config.Append ?? "console=ttyS0";
        var parts = new List<string> { user };
        if (!user.Contains("reboot=", StringComparison.Ordinal)) parts.Add(RebootOption);
        if (emulatedTsc is null) return string.Join(' ', parts); // on KVM the TSC is the host's and Linux measures it well
        if (!user.Contains("tsc_early_khz=", StringComparison.Ordinal))
            parts.Add($"tsc_early_khz={emulatedTsc.TscHz / 1000}");
        if (!user.Contains("tsc=", StringComparison.Ordinal))
            parts.Add("tsc=reliable");
        return string.Join(' ', parts);
    }

    private static byte[] ReadFile(string path, string what)
    {
        if (SharpVmm.Block.HostFile.Problem(path, what, maxBytes: int.MaxValue) is { } problem) throw new ConfigurationException(problem);
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"cannot read {what} '{path}': {ex.Message}");
        }
    }

    /// <summary>Devices are built before the VM they control exists; this forwards to it once it does.</summary>
    private sealed class DeferredVmControl : IVmControl
    {
        public IVmControl? Target { get; set; }
        public void RequestPowerOff(int exitCode) => Target?.RequestPowerOff(exitCode);
        public void RequestReset() => Target?.RequestReset();
    }
}
