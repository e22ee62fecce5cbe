using System.Runtime.CompilerServices;
using SharpVmm.Emulator.Jit;

namespace SharpVmm.Emulator;

/// <summary>The vCPU loop's side of the second tier: counting block executions, translating hot blocks, entering their code.</summary>
internal sealed unsafe partial class X86Cpu
{
    private readonly JitEngine? _jit;
    private readonly BlockCompiler? _compiler;
    private readonly int _jitThreshold;
    /// <summary>1 while this vCPU may be inside translated code (set before <see cref="Block.Jit"/> is read; see JitEngine.FlushBuffer).</summary>
    private volatile int _inJit;

    /// <summary>Entries into translated code; of them, exits before the block's end (an op the translator does not cover).</summary>
    public ulong JitEntries, JitPrefixExits;
    /// <summary>Of the early exits, those at a translated op (a TLB miss, a page-crossing or misaligned locked access, a non-canonical target) rather than at the first op not translated.</summary>
    public ulong JitMissExits;
    /// <summary>Guest instructions retired in translated code.</summary>
    public ulong JitRetired;

    public bool InTranslatedCode => _inJit != 0;

    /// <summary>
    /// Runs the block's translated prefix if it has one (translating it first once it is hot). Returns the index of
    /// the op where the interpreter continues: 0 when nothing ran, the op count when the whole block ran (RIP then
    /// already set when the block ends with a branch).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int RunTranslated(Block b)
    {
        var t = b.Jit;
        if (t is null)
        {
            if (++b.Heat < _jitThreshold) return 0;
            _jit!.Translate(b, _compiler!);
        }
        else if (t.Code == 0) return 0;
        return EnterTranslated(b);
    }

    private int EnterTranslated(Block b)
    {
        _inJit = 1;
        // Read after announcing the entry: a code-buffer flush clears every Jit field before it looks at _inJit.
        var t = b.Jit;
        if (t is null || t.Code == 0)
        {
            _inJit = 0;
            return 0;
        }
        if (t.NeedsFlagsIn) R[JitFlagsSlot] = ComputeArith();
        R[JitLinMaskSlot] = LinMask;
        R[JitUserBitSlot] = UserBit;
        R[JitTlbSlot] = (ulong)_tlb;
        int r = ((delegate* unmanaged<ulong*, int>)t.Code)(R);
        _inJit = 0;
        if ((r & Translation.FlagsWritten) != 0)
        {
            FlKind = FkEager;
            FlEager = R[JitFlagsSlot];
        }
        int k = r & Translation.IndexMask;
        var ops = b.Ops;
        JitEntries++;
        int passes = r >>> Translation.IterationShift;
        if (passes != 0)
        {
            ulong n = (ulong)passes * (ulong)b.InstrCount;
            Retired += n;
            JitRetired += n;
            _pollCountdown -= passes;
        }
        if (k >= ops.Length)
        {
            if (b.EndsWithBranch) Rip = R[JitRipSlot];
            JitRetired += (ulong)b.InstrCount;
        }
        else
        {
            JitPrefixExits++;
            if (k < t.Covered) JitMissExits++;
        }
        return k;
    }
}
