using Microsoft.Extensions.Logging;
using SharpVmm.Core;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Acpi;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Interrupts;
using SharpVmm.Devices.Legacy;
using SharpVmm.Devices.Serial;
using SharpVmm.Devices.Timers;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Board;

/// <summary>
/// What <see cref="VmBuilder.Build"/> has made so far, handed from one step to the next; until the VM exists and
/// takes them over, whatever was opened is disposed here if a later step fails.
/// </summary>
internal sealed class MachineParts(VmConfig config, ILoggerFactory loggers, ILogger log)
{
    public VmConfig Config { get; } = config;
    public ILoggerFactory Loggers { get; } = loggers;
    public ILogger Log { get; } = log;

    /// <summary>Disposed in reverse by the VM (devices before the files and images they use).</summary>
    public List<IDisposable> Disposables { get; } = [];

    /// <summary>Named for <see cref="VirtualMachine.Devices"/> once the VM exists (monitor commands, snapshots, migration).</summary>
    public List<VmDevice> Named { get; } = [];

    public BootFile? Kernel { get; set; }
    public BootFile? Initrd { get; set; }
    public byte[]? Flat { get; set; }
    public bool Multiboot { get; set; }

    /// <summary>A kernel (Linux or Multiboot) gets the whole PC platform; a flat binary gets a bare machine.</summary>
    public bool Platform => Config.Kernel is not null;
    public bool Linux => Platform && !Multiboot;

    public GuestMemory? Memory { get; set; }
    public IoBus Bus { get; set; } = null!;
    public GuestClock Clock { get; } = new();
    public VmControlForwarder Control { get; } = new();
    public IAccelerator? Accelerator { get; set; }
    public EmulatedIrqChip? IrqChip { get; set; }
    public TimerService? Timers { get; set; }
    public PcBoard Board { get; set; } = null!;
    public ICharBackend? SerialBackend { get; set; }
    public GuestPanicWatcher? PanicWatcher { get; set; }
    public AcpiGed? PowerButton { get; set; }
    public ulong? Rsdp { get; set; }

    /// <summary>The VM, once it exists: devices built before it (pvpanic) act on it through this.</summary>
    public VirtualMachine? Vm { get; set; }

    public void DisposeAll()
    {
        foreach (var d in Disposables) d.Dispose();
        Accelerator?.Dispose();
        Memory?.Dispose();
    }
}

/// <summary>Devices are built before the VM they control exists; this forwards to it once it does.</summary>
internal sealed class VmControlForwarder : IVmControl
{
    public IVmControl? Target { get; set; }
    public void RequestPowerOff(int exitCode) => Target?.RequestPowerOff(exitCode);
    public void RequestReset() => Target?.RequestReset();
}
