using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>
/// SMAP's window (STAC ... CLAC) and the TLB. The fast path cannot look at RFLAGS.AC, so a supervisor entry for a
/// user page is cached only while AC opens the window, and its slot is remembered. When AC goes back to 0 (CLAC, or
/// any RFLAGS load: POPF, IRET, SYSCALL, SYSRET) those entries leave the TLB, so the next supervisor access to such
/// a page walks the tables, where SMAP is checked. They are parked rather than forgotten: the next STAC puts them
/// back if no TLB flush or invalidation happened in between, so a kernel copying to the same user buffer syscall
/// after syscall does not walk its pages every time. Past the remembered slots, accesses simply are not cached.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    public const ulong AC = 1UL << 18;
    private const int SmapSlotsMax = 64;
    private readonly int[] _smapSlots = new int[SmapSlotsMax];
    private int _smapSlotCount;
    private readonly int[] _parkedSlots = new int[SmapSlotsMax];
    private readonly TlbEntry[] _parked = new TlbEntry[SmapSlotsMax];
    private readonly bool[] _parkedGlobal = new bool[SmapSlotsMax];
    private int _parkedCount;
    private long _parkedGeneration;
    /// <summary>Bumped by every TLB flush or invalidation: parked entries older than the last one are stale.</summary>
    private long _tlbGeneration;

    /// <summary>
    /// Called before caching the translation just walked in TLB slot <paramref name="slot"/>: true when it must not
    /// be cached (a supervisor entry for a user page under SMAP with no room to remember it).
    /// </summary>
    private bool SmapWindowBlocksCaching(int slot)
    {
        if (UserBit != 0 || !_walkUserPage || (Cr4 & Cr4Smap) == 0) return false;
        if (_smapSlotCount == SmapSlotsMax) return true;
        _smapSlots[_smapSlotCount++] = slot;
        return false;
    }

    /// <summary>AC may have been cleared: take every entry cached through the window out of the TLB.</summary>
    public void CloseSmapWindow()
    {
        if (_smapSlotCount == 0 || (FlOther & AC) != 0) return;
        int n = 0;
        for (int i = 0; i < _smapSlotCount; i++)
        {
            int slot = _smapSlots[i];
            ref TlbEntry e = ref _tlb[slot];
            // Still a supervisor entry (a later install in the same slot may have replaced it: then nothing to park).
            if (e.Tag != InvalidTag && (e.Tag & 1) == 0)
            {
                _parkedSlots[n] = slot;
                _parked[n] = e;
                _parkedGlobal[n] = _tlbGlobal[slot];
                n++;
            }
            e.Tag = InvalidTag;
        }
        _smapSlotCount = 0;
        _parkedCount = n;
        _parkedGeneration = _tlbGeneration;
    }

    /// <summary>STAC: the entries parked at the last close come back if the TLB was not flushed since.</summary>
    public void OpenSmapWindow()
    {
        int n = _parkedCount;
        _parkedCount = 0;
        if (n == 0 || _parkedGeneration != _tlbGeneration || (Cr4 & Cr4Smap) == 0) return;
        for (int i = 0; i < n && _smapSlotCount < SmapSlotsMax; i++)
        {
            int slot = _parkedSlots[i];
            _tlb[slot] = _parked[i];
            _tlbGlobal[slot] = _parkedGlobal[i];
            _smapSlots[_smapSlotCount++] = slot;
        }
    }
}
