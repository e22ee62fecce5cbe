using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVmm.Emulator.Jit;

namespace SharpVmm.Emulator;

/// <summary>One entry of the native jump cache generated code probes for indirect and cross-page jumps.</summary>
[StructLayout(LayoutKind.Sequential, Size = 32)]
internal struct NativeJumpEntry
{
    public ulong Lin;
    /// <summary>The mode key the entry was made under (<see cref="X86Cpu.JitModeSlot"/>); 0 marks it empty.</summary>
    public ulong Mode;
    public nint Code;
}

/// <summary>The vCPU loop's side of the second tier: counting block executions, translating hot blocks, entering their code.</summary>
internal sealed unsafe partial class X86Cpu
{
    private readonly JitEngine? _jit;
    private readonly BlockCompiler? _compiler;
    private readonly int _jitThreshold;
    /// <summary>1 while this vCPU may be inside translated code (set before <see cref="Block.Jit"/> is read; see JitEngine.FlushBuffer).</summary>
    private volatile int _inJit;
    /// <summary>The native jump cache (<see cref="NativeJumpCacheSize"/> entries), or null without the translator.</summary>
    private readonly NativeJumpEntry* _njc;
    /// <summary>Set when code the native jump cache may point to went away (a code-buffer flush): emptied before the next entry.</summary>
    private volatile int _njcStale;
    /// <summary>A translated block left through a direct exit whose slot still points at its stub: the next entry may patch it.</summary>
    private int _patchId = -1, _patchExit;

    public const int NativeJumpCacheSize = 16384;

    /// <summary>Block entries one dispatcher entry may chain through before it returns (so the dispatcher still polls).</summary>
    public const int ChainBudget = 512;

    /// <summary>Entries into translated code; of them, exits before the block's end (an op the translator does not cover).</summary>
    public ulong JitEntries, JitPrefixExits;
    /// <summary>Of the early exits, those at a translated op (a TLB miss, a page-crossing or misaligned locked access, a non-canonical target) rather than at the first op not translated.</summary>
    public ulong JitMissExits;
    /// <summary>Guest instructions retired in translated code.</summary>
    public ulong JitRetired;
    /// <summary>Jumps from one translated block straight into another (through a patched slot or the native jump cache).</summary>
    public ulong JitChained;

    public bool InTranslatedCode => _inJit != 0;

    /// <summary>Announces (1) or ends (0) a stretch where this vCPU may touch the code buffer (JitEngine.Translate).</summary>
    internal void SetInJit(int v) => _inJit = v;

    /// <summary>The code buffer was flushed: the native jump cache's entries may point at recycled code.</summary>
    private void MarkNativeJumpCacheStale() => _njcStale = 1;

    /// <summary>
    /// Runs translated code from the block if it has any (translating it first once it is hot). Returns the index of
    /// the op where the interpreter continues in <paramref name="b"/> (0 when nothing ran), which may now be another
    /// block the run chained into (its start RIP in R[BlockRipReg]); or -1 when the run ended at a block boundary,
    /// with RIP set and the retired instructions counted.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int RunTranslated(ref Block b)
    {
        var t = b.Jit;
        if (t is null)
        {
            if (++b.Heat < _jitThreshold) { _patchId = -1; return 0; }
            _jit!.Translate(b, _compiler!, this);
        }
        else if (t.Code == 0) { _patchId = -1; return 0; }
        return EnterTranslated(ref b);
    }

    private int EnterTranslated(ref Block b)
    {
        _inJit = 1;
        // Read after announcing the entry: a code-buffer flush clears every Jit field before it looks at _inJit.
        var t = b.Jit;
        if (t is null || t.Code == 0)
        {
            _inJit = 0;
            _patchId = -1;
            return 0;
        }
        var njc = _njc;
        if (_njcStale != 0)
        {
            _njcStale = 0;
            for (int i = 0; i < NativeJumpCacheSize; i++) njc[i].Mode = 0;
        }
        ulong lin = (R[SegBaseSlot + CS] + Rip) & LinMask;
        ulong mode = _modeKey | _jcGeneration;
        ref NativeJumpEntry e = ref njc[(int)((lin ^ (lin >> 12)) & (NativeJumpCacheSize - 1))];
        e.Mode = 0; // never a half-written entry with a valid key
        e.Lin = lin;
        e.Code = t.Code;
        e.Mode = mode;
        if (_patchId >= 0) PatchChain(b, t);

        R[JitFlagsSlot] = ComputeArith();
        R[JitOtherFlagsSlot] = FlOther;
        R[JitLinMaskSlot] = LinMask;
        R[JitUserBitSlot] = UserBit;
        R[JitTlbSlot] = (ulong)_tlb;
        R[JitModeSlot] = mode;
        R[JitRetiredSlot] = 0;
        *(int*)(R + JitBudgetSlot) = ChainBudget;
        long r = ((delegate* unmanaged<ulong*, long>)t.Code)(R);

        int id = (int)(r >> 32);
        int k = (int)(r & Translation.IndexMask);
        int detail = (int)((r >> Translation.DetailShift) & Translation.DetailMask);
        Block? x = b;
        if (id != t.Id) x = _jit!.BlockOf(id);
        _inJit = 0;

        JitEntries++;
        FlKind = FkEager;
        FlEager = R[JitFlagsSlot];
        ulong n = R[JitRetiredSlot];
        Retired += n;
        JitRetired += n;
        int budget = *(int*)(R + JitBudgetSlot);
        int used = ChainBudget - budget - (budget < 0 ? 1 : 0);
        if (used > 1)
        {
            JitChained += (ulong)(used - 1);
            _pollCountdown -= used - 1;
        }
        if (k == Translation.Boundary)
        {
            Rip = R[JitRipSlot];
            // A direct exit not chained yet: the block the dispatcher enters next may be its target.
            if (detail != Translation.DetailMask)
            {
                _patchId = id;
                _patchExit = detail;
            }
            return -1;
        }
        _patchId = -1;
        JitPrefixExits++;
        if ((r & Translation.MissBit) != 0) JitMissExits++;
        if (_jit!.Exits is { } h && x is not null) RecordExit(h, x, detail, (r & Translation.MissBit) != 0);
        if (x is null || !x.Valid || k >= x.Ops.Length)
        {
            // The block was dropped while it ran: continue at the instruction the exit was at, decoded afresh.
            Rip = (R[BlockRipReg] + (ulong)detail) & IpMask;
            return -1;
        }
        b = x;
        return k;
    }

    /// <summary>The guest instruction at offset <paramref name="off"/> of <paramref name="x"/> made translated code leave early (SHARPVMM_JIT_STATS=2).</summary>
    private void RecordExit(ExitHistogram h, Block x, int off, bool miss)
    {
        ulong pa = (x.Key & 0xFFFF_FFFF_FFFFUL) + (ulong)off;
        var r = FindRam(pa);
        if (r is null || !r.Contains(pa, 1)) return;
        int n = (int)Math.Min(15UL, r.GuestEnd - pa);
        h.Record(new ReadOnlySpan<byte>(r.Host + (pa - r.GuestBase), n), (int)(x.Key >> 56), miss);
    }

    /// <summary>
    /// The run before this one left block A through direct exit <see cref="_patchExit"/>; if <paramref name="b"/> is
    /// that exit's target (same guest-physical page, same decode mode), A's slot now points at b's code.
    /// Called with _inJit set, so neither translation's memory can be recycled meanwhile.
    /// </summary>
    private void PatchChain(Block b, Translation t)
    {
        int id = _patchId, exit = _patchExit;
        _patchId = -1;
        var from = _jit!.BlockOf(id)?.Jit;
        if (from is null || from.Id != id || (uint)exit >= (uint)from.Targets.Length) return;
        if (from.Targets[exit] != b.Key || b.PhysPage2 != Block.NoPage || from.Generation != t.Generation) return;
        from.Patch(exit, t.Code);
    }
}
