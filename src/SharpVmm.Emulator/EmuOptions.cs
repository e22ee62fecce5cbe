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

    /// <summary>
    /// CPUID says the CPU runs under a hypervisor (CPUID.1:ECX[31]) and names it in leaves 0x40000000/0x40000001
    /// with KVM's signature and no paravirtual features; Linux then uses x2APIC. Off: the CPU looks like bare metal.
    /// </summary>
    public bool HypervisorLeaves { get; init; } = true;

    /// <summary>
    /// Default <see cref="CodeCacheBudgetBytes"/>. A Debian kernel's boot decodes about 10 MiB (estimated); at the
    /// old 4 MiB the cache was dropped 45 times per boot, and every translation with it.
    /// </summary>
    public const long DefaultCodeCacheBudgetBytes = 32L << 20;

    /// <summary>
    /// Memory the decoded-code cache (shared by the VM's vCPUs) may take before it is emptied and refilled from the
    /// code the guest runs next, as QEMU flushes its full translation buffer. 0 = unbounded. Smaller saves memory
    /// per VM; too small makes a guest whose hot code does not fit re-decode constantly.
    /// </summary>
    public long CodeCacheBudgetBytes
    {
        get => _codeCacheBudgetBytes;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _codeCacheBudgetBytes = value;
        }
    }

    private readonly long _codeCacheBudgetBytes = DefaultCodeCacheBudgetBytes;

    /// <summary>
    /// Default <see cref="JitThreshold"/>: a block costs about 20 µs to translate and saves some 50 ns a run, so it
    /// pays for itself after a few hundred runs (bench/boot.sh measured 100, 200, 400 and 1000).
    /// </summary>
    public const int DefaultJitThreshold = 200;

    /// <summary>Default <see cref="Jit"/>.</summary>
    public const JitMode DefaultJit = JitMode.On;

    /// <summary>Whether hot blocks are translated to host code (the second tier); see <see cref="JitMode"/>.</summary>
    public JitMode Jit { get; init; } = DefaultJit;

    /// <summary>Executions after which a block is translated under <see cref="JitMode.On"/>.</summary>
    public int JitThreshold
    {
        get => _jitThreshold;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _jitThreshold = value;
        }
    }

    private readonly int _jitThreshold = DefaultJitThreshold;

    /// <summary>Bytes of executable memory reserved per VM for translated code.</summary>
    public long JitCodeBytes
    {
        get => _jitCodeBytes;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 4096);
            _jitCodeBytes = value;
        }
    }

    private readonly long _jitCodeBytes = 64L << 20;

    /// <summary>Tests: behave as a host that refuses writable+executable mappings.</summary>
    internal bool JitRefuseRwx { get; init; }

    /// <summary>Tests: behave as a host that refuses the memfd double mapping too.</summary>
    internal bool JitRefuseDoubleMap { get; init; }
}
