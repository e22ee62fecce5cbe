using SharpVmm.Core.Cpu;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;
using SharpVmm.Core.Time;
using SharpVmm.Memory;

namespace SharpVmm.Emulator;

/// <summary>
/// The software x86-64 CPU: each vCPU interprets guest code on the calling thread from a decoded-block cache
/// shared by all vCPUs of the VM (keyed by guest-physical address, so it survives address-space switches).
/// </summary>
public sealed class EmuAccelerator : IAccelerator
{
    private readonly GuestMemory _memory;
    private readonly IIoBus _bus;
    private readonly EmuOptions _options;
    private readonly GuestClock _clock;
    private readonly BlockCache _cache;
    private readonly List<X86Cpu> _cpus = [];
    private bool _disposed;

    public EmuAccelerator(GuestMemory memory, IIoBus bus, EmuOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(bus);
        _memory = memory;
        _bus = bus;
        _options = options ?? new EmuOptions();
        _clock = _options.Clock ?? new GuestClock();
        _cache = new BlockCache(memory, _options.CodeCacheBudgetBytes);
        if (_options.Jit != JitMode.Off) _jit = new Jit.JitEngine(_options, _cache);
    }

    private readonly Jit.JitEngine? _jit;

    /// <summary>The second tier, or null when it is off.</summary>
    internal Jit.JitEngine? JitEngine => _jit;

    public string Name => "emu";

    public IIrqRouter? IrqRouter => _options.IrqRouter;

    public IVcpu CreateVcpu(int index)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        lock (_cpus)
        {
            foreach (var c in _cpus)
                if (c.Index == index) throw new InvalidOperationException($"vCPU {index} already exists in this VM");
            var apic = _options.LocalApicFactory?.Invoke(index);
            var cpu = new X86Cpu(index, _memory, _bus, _cache, _clock, apic, _options.Logger, _jit) { HypervisorLeaves = _options.HypervisorLeaves };
            _cpus.Add(cpu);
            return cpu;
        }
    }

    /// <summary>Whether the vCPUs' CPUID shows the hypervisor bit and leaves (<see cref="EmuOptions.HypervisorLeaves"/>).</summary>
    public bool HypervisorLeaves => _options.HypervisorLeaves;

    /// <summary>Decoded blocks currently cached (for tests and diagnostics).</summary>
    internal int CachedBlockCount => _cache.Count;

    /// <summary>Estimated bytes of decoded code cached now.</summary>
    public long CachedCodeBytes => _cache.UsedBytes;

    /// <summary>The decoded-code cache's budget this VM runs with (0 = unbounded).</summary>
    public long CodeCacheBudgetBytes => _options.CodeCacheBudgetBytes;

    /// <summary>Times the decoded-code cache was emptied for going over <see cref="EmuOptions.CodeCacheBudgetBytes"/>.</summary>
    public int CodeCacheFlushes => _cache.Flushes;

    /// <summary>The second tier's counters (all zero with it off), summed over the vCPUs.</summary>
    public JitStatistics GetJitStatistics()
    {
        ulong retired = 0, translated = 0, entries = 0, exits = 0, misses = 0, chained = 0;
        lock (_cpus)
        {
            foreach (var c in _cpus)
            {
                retired += c.Retired;
                translated += c.JitRetired;
                entries += c.JitEntries;
                exits += c.JitPrefixExits;
                misses += c.JitMissExits;
                chained += c.JitChained;
            }
        }
        var j = _jit;
        return new JitStatistics
        {
            Mode = _options.Jit,
            Buffer = j?.BufferKind switch { Jit.CodeBufferKind.Rwx => "rwx", Jit.CodeBufferKind.DoubleMapped => "double-mapped", _ => "none" },
            Failure = j?.Failure,
            Threshold = j?.Threshold ?? _options.JitThreshold,
            BlocksTranslated = j?.BlocksTranslated ?? 0,
            BlocksNotTranslatable = j?.Untranslatable ?? 0,
            CodeBytes = j?.CodeBytes ?? 0,
            BufferBytes = j is null ? 0 : _options.JitCodeBytes,
            BufferUsedBytes = (long)(j?.BufferUsed ?? 0),
            BufferFlushes = j?.BufferFlushes ?? 0,
            TranslationTime = j?.TranslationTime ?? TimeSpan.Zero,
            InstructionsRetired = retired,
            InstructionsTranslated = translated,
            Entries = entries,
            ChainedTransitions = chained,
            PrefixExits = exits,
            MissExits = misses,
        };
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        // A debugging aid for measuring boots: SHARPVMM_JIT_STATS=1 prints the translator's counters at the end.
        // SHARPVMM_JIT_STATS=2 adds the guest instructions translated code most often left early at.
        if (_jit is not null && Environment.GetEnvironmentVariable("SHARPVMM_JIT_STATS") is "1" or "2")
        {
            var s = GetJitStatistics();
            Console.Error.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"emu jit: {s.InstructionsRetired} instructions, {100 * s.TranslatedShare:F1}% translated; {s.BlocksTranslated} blocks ({s.CodeBytes} bytes, {s.BlocksNotTranslatable} not translatable) in {s.TranslationTime.TotalMilliseconds:F0} ms; {s.Entries} entries, {s.ChainedTransitions} chained, {s.PrefixExits} early exits ({s.MissExits} at a translated op's slow path, {s.UntranslatedExits} at an op not translated); {s.BufferFlushes} buffer flushes; {CodeCacheFlushes} decoded-code cache flushes"));
            if (_jit.Exits is { } h) Console.Error.Write(h.Report(30));
        }
        lock (_cpus)
        {
            foreach (var c in _cpus) c.Dispose();
            _cpus.Clear();
        }
        _cache.Dispose();
        _jit?.Dispose();
    }
}
