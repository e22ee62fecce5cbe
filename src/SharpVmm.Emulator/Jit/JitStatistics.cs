namespace SharpVmm.Emulator;

/// <summary>What the emu accelerator's second tier has done so far (<c>info jit</c>, <c>x-query-jit</c>, benches).</summary>
public sealed record JitStatistics
{
    public JitMode Mode { get; init; }
    /// <summary>Where translated code lives: "rwx", "double-mapped", or "none" (interpreter only; see <see cref="Failure"/>).</summary>
    public string Buffer { get; init; } = "none";
    public string? Failure { get; init; }
    public int Threshold { get; init; }
    public long BlocksTranslated { get; init; }
    /// <summary>Blocks whose first instruction the translator does not cover (left to the interpreter for good).</summary>
    public long BlocksNotTranslatable { get; init; }
    public long CodeBytes { get; init; }
    public long BufferBytes { get; init; }
    public long BufferUsedBytes { get; init; }
    public long BufferFlushes { get; init; }
    public TimeSpan TranslationTime { get; init; }
    public ulong InstructionsRetired { get; init; }
    public ulong InstructionsTranslated { get; init; }
    /// <summary>Entries into translated code from the dispatcher (each ends with one return to it).</summary>
    public ulong Entries { get; init; }
    /// <summary>Jumps from one translated block straight into the next (a patched chain slot or the native jump cache), without the dispatcher.</summary>
    public ulong ChainedTransitions { get; init; }
    /// <summary>Exits before a block's end: an instruction not translated, or a memory access that missed the TLB.</summary>
    public ulong PrefixExits { get; init; }
    /// <summary>Of <see cref="PrefixExits"/>: at a translated op whose fast path did not apply (TLB miss, page crossing, misaligned LOCK, non-canonical target).</summary>
    public ulong MissExits { get; init; }
    /// <summary>Of <see cref="PrefixExits"/>: at the first op the translator does not cover.</summary>
    public ulong UntranslatedExits => PrefixExits - MissExits;

    public double TranslatedShare => InstructionsRetired == 0 ? 0 : (double)InstructionsTranslated / InstructionsRetired;
}
