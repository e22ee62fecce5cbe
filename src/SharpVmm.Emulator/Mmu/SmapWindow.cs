namespace SharpVmm.Emulator;

/// <summary>
/// SMAP's window (STAC ... CLAC) and the TLB. The fast path cannot look at RFLAGS.AC, so a supervisor entry for a
/// user page is cached only while AC opens the window, and its slot is remembered. When AC goes back to 0 (CLAC, or
/// any RFLAGS load: POPF, IRET, SYSCALL, SYSRET) those entries leave the TLB, so the next supervisor access to such
/// a page walks the tables, where SMAP is checked. They are parked rather than forgotten: the next STAC puts them
/// back if no TLB flush or invalidation happened in between, so a kernel copying to the same user buffer syscall
/// after syscall does not walk its pages every time. Past the remembered slots, accesses simply are not cached.
/// </summary>
internal sealed unsafe partial class Mmu
{
    private const int SmapSlotsMax = 64;
    private readonly int[] _smapSlots = new int[SmapSlotsMax];
    private int _smapSlotCount;
    private readonly int[] _parkedSlots = new int[SmapSlotsMax];
    private readonly TlbEntry[] _parked = new TlbEntry[SmapSlotsMax];
    private readonly bool[] _parkedGlobal = new bool[SmapSlotsMax];
    private int _parkedCount;
    private long _parkedGeneration;

    /// <summary>Some TLB entries were cached through an open SMAP window (a close has work to do).</summary>
    public bool HasSmapWindowEntries => _smapSlotCount != 0;

    /// <summary>
    /// Called before caching the translation just walked in TLB slot <paramref name="slot"/>: true when it must not
    /// be cached (a supervisor entry for a user page under SMAP with no room to remember it).
    /// </summary>
    private bool SmapWindowBlocksCaching(int slot, ulong userBit)
    {
        if (userBit != 0 || !WalkUserPage || !_walkSmap) return false;
        if (_smapSlotCount == SmapSlotsMax) return true;
        _smapSlots[_smapSlotCount++] = slot;
        return false;
    }

    /// <summary>AC may have been cleared: unless it is still <paramref name="ac"/>, take every entry cached through the window out of the TLB.</summary>
    public void CloseSmapWindow(bool ac)
    {
        if (_smapSlotCount == 0 || ac) return;
        int n = 0;
        for (int i = 0; i < _smapSlotCount; i++)
        {
            int slot = _smapSlots[i];
            ref TlbEntry e = ref Tlb[slot];
            // Still a supervisor entry (a later install in the same slot may have replaced it: then nothing to park).
            if (e.Tag != InvalidTag && (e.Tag & 1) == 0)
            {
                _parkedSlots[n] = slot;
                _parked[n] = e;
                _parkedGlobal[n] = _global[slot];
                n++;
            }
            e.Tag = InvalidTag;
        }
        _smapSlotCount = 0;
        _parkedCount = n;
        _parkedGeneration = _generation;
    }

    /// <summary>STAC: the entries parked at the last close come back if the TLB was not flushed since (and SMAP is still on).</summary>
    public void OpenSmapWindow(bool smap)
    {
        int n = _parkedCount;
        _parkedCount = 0;
        if (n == 0 || _parkedGeneration != _generation || !smap) return;
        for (int i = 0; i < n && _smapSlotCount < SmapSlotsMax; i++)
        {
            int slot = _parkedSlots[i];
            Tlb[slot] = _parked[i];
            _global[slot] = _parkedGlobal[i];
            _smapSlots[_smapSlotCount++] = slot;
        }
    }
}
