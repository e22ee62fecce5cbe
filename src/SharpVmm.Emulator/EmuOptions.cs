using Microsoft.Extensions.Logging;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Time;

namespace SharpVmm.Emulator;

/// <summary>How the emu accelerator's vCPUs are wired to the rest of the machine.</summary>
public sealed record EmuOptions
{
    /// <summary>RDTSC source; default a new <see cref="GuestClock"/>.</summary>
    public GuestClock? Clock { get; init; }

    /// <summary>Per-vCPU local APIC; null (or a factory returning null) means no interrupt controller.</summary>
    public Func<int, ILocalApic?>? LocalApicFactory { get; init; }

    public IIrqRouter? IrqRouter { get; init; }

    /// <summary>Where the CPU logs what it does not implement (debug level). Null = no logging.</summary>
    public ILogger? Logger { get; init; }
}
