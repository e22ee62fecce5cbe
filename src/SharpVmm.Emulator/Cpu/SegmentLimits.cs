using System.Runtime.CompilerServices;

namespace SharpVmm.Emulator;

/// <summary>
/// Segment limit, type and null-selector checks for data accesses outside 64-bit mode. Flat segments (base
/// anything, limit 4 GiB, expand-up, writable data) need none, and that is what 32-bit guests run with nearly
/// always; so checks are not in the access fast path. Instead <see cref="SegCheckMask"/> names the segment
/// registers that do need them, it is part of the block key, and blocks decoded under a non-zero mask carry a
/// check op in front of every access through one of those segments (see Translator.AddSegmentChecks).
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    /// <summary>Bit n set: accesses through segment register n (ES..GS) must be checked.</summary>
    public ulong SegCheckMask;

    private void UpdateSegCheck(int seg)
    {
        ulong bit = 1UL << seg;
        if (ProtectedMode && Bitness != 64 && SegmentNeedsChecks(seg)) SegCheckMask |= bit;
        else SegCheckMask &= ~bit;
        UpdateModeKey();
    }

    private bool SegmentNeedsChecks(int seg)
    {
        ref var s = ref Sreg[seg];
        if (s.Unusable) return true;
        bool code = (s.Type & 8) != 0;
        if (seg == CS) return s.Limit != 0xFFFF_FFFF || (s.Type & 2) == 0; // a limit, or execute-only
        if (code || (s.Type & 4) != 0 || (s.Type & 2) == 0) return true; // code, expand-down or read-only data
        return s.Limit != 0xFFFF_FFFF;
    }

    /// <summary>
    /// Checks an access of <paramref name="size"/> bytes at <paramref name="offset"/> through segment
    /// <paramref name="seg"/>: #GP(0) (#SS(0) for SS) on a null segment, a write to a read-only or code segment, a
    /// read of an execute-only one, or any byte outside the limit (expand-down segments: above it).
    /// </summary>
    public void CheckSegmentAccess(int seg, ulong offset, ulong size, bool write)
    {
        ref var s = ref Sreg[seg];
        bool ok;
        if (s.Unusable) ok = false;
        else if ((s.Type & 8) != 0) ok = !write && (s.Type & 2) != 0;
        else ok = !write || (s.Type & 2) != 0;
        if (ok)
        {
            ulong last = offset + size - 1;
            if ((s.Type & 0xC) == 4) ok = offset > s.Limit && last <= (s.Db ? 0xFFFF_FFFFUL : 0xFFFF);
            else ok = last <= s.Limit;
        }
        if (!ok) throw seg == SS ? Ss(0) : Gp(0);
    }
}

internal static unsafe partial class Handlers
{
    /// <summary>
    /// The check op placed before an access through a checked segment: op.Seg, the offset's base/index/scale/
    /// disp/address mask, op.Imm = access size, op.Cc = 1 for a write. Same Off as its instruction, so a fault
    /// reports that instruction.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void SegmentCheck(X86Cpu c, ref Op op)
        => c.CheckSegmentAccess(op.Seg, c.EaOffset(ref op), op.Imm, op.Cc != 0);
}
