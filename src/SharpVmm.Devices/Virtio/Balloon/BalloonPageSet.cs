namespace SharpVmm.Devices.Virtio.Balloon;

/// <summary>Which guest pages sit in the balloon: a bitmap over page frame numbers, so a PFN given twice counts once.</summary>
internal sealed class BalloonPageSet(ulong pageCount)
{
    private ulong[]? _bits; // allocated on the first inflation: most VMs never inflate

    public ulong Count { get; private set; }

    /// <summary>Adds <paramref name="pfn"/> (below the page count); false when it was already in.</summary>
    public bool Add(ulong pfn)
    {
        _bits ??= new ulong[(pageCount + 63) / 64];
        ref ulong word = ref _bits[pfn >> 6];
        ulong mask = 1UL << (int)(pfn & 63);
        if ((word & mask) != 0) return false;
        word |= mask;
        Count++;
        return true;
    }

    /// <summary>Removes <paramref name="pfn"/>; false when it was not in the balloon.</summary>
    public bool Remove(ulong pfn)
    {
        if (_bits is null) return false;
        ref ulong word = ref _bits[pfn >> 6];
        ulong mask = 1UL << (int)(pfn & 63);
        if ((word & mask) == 0) return false;
        word &= ~mask;
        Count--;
        return true;
    }

    /// <summary>The bitmap words (empty when nothing was ever inflated), for a device state section.</summary>
    public ReadOnlySpan<ulong> Words => _bits;

    /// <summary>Replaces the set with saved words; false when they do not fit this page count.</summary>
    public bool TryLoad(ulong[] words)
    {
        if (words.Length == 0) { Clear(); return true; }
        if ((ulong)words.Length != (pageCount + 63) / 64) return false;
        ulong count = 0;
        foreach (ulong w in words) count += (ulong)System.Numerics.BitOperations.PopCount(w);
        _bits = words;
        Count = count;
        return true;
    }

    public void Clear()
    {
        _bits = null;
        Count = 0;
    }
}
