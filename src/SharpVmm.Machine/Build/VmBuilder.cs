using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Core;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Legacy;
using SharpVmm.Devices.Serial;
using SharpVmm.Emulator;
using SharpVmm.Kvm;
using SharpVmm.Machine.Config;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Build;

/// <summary>
/// Assembles a <see cref="VirtualMachine"/> from a <see cref="VmConfig"/>: RAM, bus, accelerator, platform
/// devices, boot payload. The one place that knows how the parts fit, so nothing below it reads the command line.
/// </summary>
public static class VmBuilder
{
    public const ushort Com1Port = 0x3F8;
    public const int Com1Gsi = 4;

    public static VirtualMachine Build(VmConfig config, ILoggerFactory? loggers = null)
    {
        loggers ??= NullLoggerFactory.Instance;
        var log = loggers.CreateLogger("SharpVmm.Machine");
        config.Validate();
        var (kind, why) = AcceleratorChoice.Resolve(config);
        log.LogInformation("accelerator: {Kind} ({Why})", kind.ToString().ToLowerInvariant(), why);

        // Read the payload before anything is mapped, so a bad file fails fast and cheaply.
        byte[] payload = ReadFile(config.Kernel ?? config.Flat!.Path, config.Kernel is not null ? "kernel" : "flat binary");
        byte[]? initrd = config.Initrd is null ? null : ReadFile(config.Initrd, "initrd");
        if (config.Kernel is not null) SetupHeader.Parse(payload); // validates: a bad bzImage is an error before any vCPU exists

        var disposables = new List<IDisposable>();
        GuestMemory? memory = null;
        IAccelerator? accel = null;
        try
        {
            memory = GuestMemory.Create(config.MemoryBytes);
            var bus = new IoBus(loggers.CreateLogger("SharpVmm.IoBus")) { UnmappedPolicy = config.UnmappedAccess };
            var clock = new GuestClock();
            var control = new DeferredVmControl();

            accel = kind switch
            {
                AcceleratorKind.Kvm => KvmAccelerator.Create(memory, bus, new KvmOptions { IrqChip = config.Kernel is not null, VcpuCount = config.Cpus }),
                _ => new EmuAccelerator(memory, bus, new EmuOptions { Clock = clock }),
            };
            IIrqRouter? irqs = accel.IrqRouter;

            var serial = CharBackends.Create(config.Serial);
            var uart = new Uart16550(serial, irqs is null ? null : new IrqLine(irqs, Com1Gsi));
            disposables.Add(uart);
            bus.RegisterPort(Com1Port, 8, uart, "COM1");
            var i8042 = new I8042Controller(control);
            bus.RegisterPort(I8042Controller.DataPortNumber, 1, i8042.DataPort, "i8042-data");
            bus.RegisterPort(I8042Controller.CommandPortNumber, 1, i8042.CommandPort, "i8042-command");
            bus.RegisterPort(DebugExitPort.DefaultPort, 1, new DebugExitPort(control), "debug-exit");

            Func<VcpuState[]> load = config.Kernel is not null
                ? LinuxPayload(memory, payload, initrd, config)
                : FlatPayload(memory, payload, config.Flat!, config.Cpus);

            var vm = new VirtualMachine(memory, bus, accel, config.Cpus, load, clock, log);
            control.Target = vm;
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

    private static Func<VcpuState[]> FlatPayload(GuestMemory memory, byte[] image, FlatImageSpec flat, int cpus) => () =>
    {
        // Every vCPU of a flat guest starts at the entry point; the guest tells them apart with CPUID's APIC ID.
        var bsp = FlatLoader.Load(memory, image, flat.Address, flat.Mode);
        var states = new VcpuState[cpus];
        for (int i = 0; i < cpus; i++) states[i] = i == 0 ? bsp : bsp.Clone();
        return states;
    };

    private static Func<VcpuState[]> LinuxPayload(GuestMemory memory, byte[] kernel, byte[]? initrd, VmConfig config) => () =>
    {
        var bsp = LinuxLoader.Load(memory, new LinuxBootSpec
        {
            Kernel = kernel,
            Initrd = initrd,
            CommandLine = config.Append ?? "console=ttyS0",
        });
        return [bsp];
    };

    private static byte[] ReadFile(string path, string what)
    {
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
