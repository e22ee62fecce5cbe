using System.Threading;

namespace SharpVmm.Memory;

/// <summary>
/// One bit per 4 KiB guest page, set by writers on any thread, harvested by migration.
/// Writers use Interlocked OR so concurrent vCPU threads never lose a bit; the harvester swaps words out.
/// </summary>
public sealed class DirtyBitmap
{
    public const int PageShift = 12;
    private readonly ulong[] _words;

    public DirtyBitmap(ulong regionSize)
    {
        PageCount = (long)((regionSize + (1UL << PageShift) - 1) >> PageShift);
        _words = new ulong[(PageCount + 63) / 64];
    }

    public long PageCount { get; }

    /// <summary>When false, <see cref="MarkRange"/> is a single branch: tracking costs nothing until migration asks.</summary>
    public bool Enabled { get; set; }

    public void MarkPage(long page)
    {
        ref ulong w = ref _words[page >> 6];
        ulong bit = 1UL << (int)(page & 63);
        if ((Volatile.Read(ref w) & bit) == 0)
            Interlocked.Or(ref w, bit);
    }

    /// <summary>Marks the pages covering [offset, offset+length) of the region.</summary>
    public void MarkRange(ulong offset, ulong length)
    {
        if (!Enabled || length == 0) return;
        long first = (long)(offset >> PageShift), last = (long)((offset + length - 1) >> PageShift);
        for (long p = first; p <= last; p++) MarkPage(p);
    }

    public bool IsDirty(long page) => (Volatile.Read(ref _words[page >> 6]) & (1UL << (int)(page & 63))) != 0;

    /// <summary>Copies the bitmap into <paramref name="into"/> and clears it atomically word by word.</summary>
    public void Harvest(Span<ulong> into)
    {
        if (into.Length < _words.Length) throw new ArgumentException("destination too small", nameof(into));
        for (int i = 0; i < _words.Length; i++) into[i] = Interlocked.Exchange(ref _words[i], 0);
    }

    public int WordCount => _words.Length;

    public void SetAll()
    {
        for (int i = 0; i < _words.Length; i++) _words[i] = ulong.MaxValue;
    }

    public void Clear() => Array.Clear(_words);
}
