using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpVmm.Memory;

/// <summary>
/// Guest-physical RAM: a few regions, each an anonymous MAP_NORESERVE mapping, with holes between them.
/// Every accessor checks bounds against the regions; an address outside RAM throws
/// <see cref="GuestMemoryException"/> and never reaches host memory. Callers that want MMIO semantics
/// ask <see cref="IsRam"/> first and send the access to the IO bus instead.
/// </summary>
public sealed unsafe partial class GuestMemory : IDisposable
{
    private readonly MemoryRegion[] _regions;
    private bool _disposed;

    private GuestMemory(MemoryRegion[] regions, GuestMemoryOptions options)
    {
        _regions = regions;
        Options = options;
        foreach (var r in regions) TotalSize += r.Size;
    }

    public IReadOnlyList<MemoryRegion> Regions => _regions;
    public ulong TotalSize { get; }
    public GuestMemoryOptions Options { get; }

    /// <summary>RAM of <paramref name="size"/> bytes laid out around the 32-bit MMIO hole.</summary>
    public static GuestMemory Create(ulong size, GuestMemoryOptions? options = null)
        => Create(MemoryLayout.RamRanges(size), options);

    /// <summary>RAM at explicit ranges (page aligned, sorted, not overlapping).</summary>
    public static GuestMemory Create(IReadOnlyList<(ulong Base, ulong Size)> ranges, GuestMemoryOptions? options = null)
    {
        options ??= new GuestMemoryOptions();
        var regions = new List<MemoryRegion>(ranges.Count);
        try
        {
            ulong prevEnd = 0;
            for (int i = 0; i < ranges.Count; i++)
            {
                var (b, s) = ranges[i];
                if (s == 0 || (b & 0xFFF) != 0 || (s & 0xFFF) != 0)
                    throw new GuestMemoryException($"RAM range 0x{b:x}+0x{s:x} must be non-empty and 4 KiB aligned");
                if (i > 0 && b < prevEnd)
                    throw new GuestMemoryException($"RAM range at 0x{b:x} overlaps or is out of order");
                if (b + s < b) throw new GuestMemoryException($"RAM range 0x{b:x}+0x{s:x} wraps the address space");
                prevEnd = b + s;
                regions.Add(new MemoryRegion(i, b, s, Map(s, options)));
            }
        }
        catch
        {
            foreach (var r in regions) Libc.Munmap((nint)r.Host, (nuint)r.Size);
            throw;
        }
        return new GuestMemory([.. regions], options);
    }

    private static byte* Map(ulong size, GuestMemoryOptions o)
    {
        // THP that the host switched off ("never") accepts MADV_HUGEPAGE and does nothing: refuse before mapping.
        if (o.HugePages) HostMemoryFeatures.RequireTransparentHugePages();
        int flags = Libc.MapPrivate | Libc.MapAnonymous | Libc.MapNoReserve;
        nint p = Libc.Mmap(0, (nuint)size, Libc.ProtRead | Libc.ProtWrite, flags, -1, 0);
        if (p == Libc.MapFailed)
            throw new GuestMemoryException($"cannot map {size >> 20} MiB of guest RAM: errno {Marshal.GetLastPInvokeError()} (lower --memory?)");
        try
        {
            if (o.Merge) Advise(p, size, Libc.MadvMergeable, "KSM merging (merge=on): is CONFIG_KSM enabled on this host?");
            if (o.HugePages) Advise(p, size, Libc.MadvHugepage, "transparent huge pages (hugepages=on): are THP enabled on this host?");
            // After the advice, so preallocated pages are huge where asked. MAP_POPULATE would hide a failure.
            if (o.Prealloc) Populate(p, size);
        }
        catch
        {
            Libc.Munmap(p, (nuint)size);
            throw;
        }
        return (byte*)p;
    }

    private static void Populate(nint p, ulong size)
    {
        if (Libc.Madvise(p, (nuint)size, Libc.MadvPopulateWrite) == 0) return;
        int errno = Marshal.GetLastPInvokeError();
        if (errno != Libc.EINVAL)
            throw new GuestMemoryException($"cannot preallocate {size >> 20} MiB of guest RAM (prealloc=on): errno {errno}"
                + (errno == Libc.ENOMEM ? " (not enough host memory: lower --memory or drop prealloc=on)" : ""));
        // Kernels before 5.14 lack MADV_POPULATE_WRITE: touch every page instead (a shortfall then is the OOM killer's).
        for (ulong off = 0; off < size; off += 4096) ((byte*)p)[off] = 0;
    }

    /// <summary>
    /// Gives the host pages of [gpa, gpa+length) back (MADV_DONTNEED): their memory is freed, and the guest reads zeros
    /// there next time, as a balloon driver expects of pages it handed over. The range must be 4 KiB aligned and lie
    /// in one RAM region; anything else throws and touches nothing.
    /// </summary>
    public void Discard(ulong gpa, ulong length)
    {
        ThrowIfDisposed();
        if (((gpa | length) & 0xFFF) != 0) throw new GuestMemoryException($"discard of 0x{gpa:x}+0x{length:x} is not 4 KiB aligned");
        if (length == 0) return;
        var r = FindRegion(gpa);
        if (r is null || !r.Contains(gpa, length)) throw OutOfRam(gpa, length);
        if (Libc.Madvise((nint)(r.Host + (gpa - r.GuestBase)), (nuint)length, Libc.MadvDontNeed) != 0)
            throw new GuestMemoryException($"the host refused to discard guest RAM 0x{gpa:x}+0x{length:x} (errno {Marshal.GetLastPInvokeError()})");
        // The content changed (to zeros): migration must resend it, a software CPU must forget code decoded there.
        r.Dirty.MarkRange(gpa - r.GuestBase, length);
        WriteObserver?.Invoke(gpa, length);
    }

    /// <summary>Bytes of guest RAM the host has backed with memory right now (mincore), over every region.</summary>
    public ulong ResidentBytes()
    {
        ThrowIfDisposed();
        ulong total = 0;
        foreach (var r in _regions)
        {
            const ulong chunk = 1UL << 30; // a 256 KiB vector per GiB
            byte[] vec = new byte[(int)(Math.Min(r.Size, chunk) >> 12)];
            for (ulong off = 0; off < r.Size; off += chunk)
            {
                ulong len = Math.Min(chunk, r.Size - off);
                fixed (byte* v = vec)
                {
                    if (Libc.Mincore((nint)(r.Host + off), (nuint)len, v) != 0)
                        throw new GuestMemoryException($"mincore on guest RAM failed (errno {Marshal.GetLastPInvokeError()})");
                }
                int pages = (int)(len >> 12);
                for (int i = 0; i < pages; i++) total += (ulong)(vec[i] & 1);
            }
        }
        return total << 12;
    }

    private static void Advise(nint p, ulong size, int advice, string what)
    {
        if (Libc.Madvise(p, (nuint)size, advice) != 0)
            throw new GuestMemoryException($"the host refused {what} (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>The region holding <paramref name="gpa"/>, or null for an address in a hole or past RAM.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MemoryRegion? FindRegion(ulong gpa)
    {
        var regions = _regions;
        for (int i = 0; i < regions.Length; i++)
            if (regions[i].Contains(gpa)) return regions[i];
        return null;
    }

    public bool IsRam(ulong gpa) => FindRegion(gpa) is not null;

    /// <summary>
    /// Told (gpa, length) whenever the VMM writes RAM through this object (Write, GetWritableSpan, Clear; not raw
    /// host pointers), so a software CPU can drop instructions it decoded from those pages.
    /// </summary>
    public Action<ulong, ulong>? WriteObserver { get; set; }

    /// <summary>True when all of [gpa, gpa+length) lies in one region.</summary>
    public bool IsRam(ulong gpa, ulong length) => FindRegion(gpa) is { } r && r.Contains(gpa, length);

    /// <summary>
    /// Host address of [gpa, gpa+length) if it lies inside one region; for accelerators' fast paths.
    /// The caller must mark pages dirty itself if it writes through the pointer.
    /// </summary>
    public bool TryGetHostPointer(ulong gpa, ulong length, out byte* host)
    {
        ThrowIfDisposed();
        var r = FindRegion(gpa);
        if (r is null || !r.Contains(gpa, length)) { host = null; return false; }
        host = r.Host + (gpa - r.GuestBase);
        return true;
    }

    /// <summary>A span over guest RAM for reading; [gpa, gpa+length) must lie in one region.</summary>
    public ReadOnlySpan<byte> GetReadOnlySpan(ulong gpa, int length) => new(Check(gpa, length, out _), length);

    /// <summary>A span over guest RAM for writing; its pages are marked dirty now.</summary>
    public Span<byte> GetWritableSpan(ulong gpa, int length)
    {
        byte* p = Check(gpa, length, out var r);
        r.Dirty.MarkRange(gpa - r.GuestBase, (ulong)length);
        WriteObserver?.Invoke(gpa, (ulong)length);
        return new Span<byte>(p, length);
    }

    /// <summary>Copies guest RAM into <paramref name="destination"/>; the range may cross adjacent regions but not a hole.</summary>
    public void Read(ulong gpa, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var r = RegionOrThrow(gpa, destination.Length);
            int n = (int)Math.Min((ulong)destination.Length, r.GuestEnd - gpa);
            new ReadOnlySpan<byte>(r.Host + (gpa - r.GuestBase), n).CopyTo(destination);
            destination = destination[n..];
            gpa += (ulong)n;
        }
    }

    /// <summary>Copies <paramref name="source"/> into guest RAM and marks the pages dirty.</summary>
    public void Write(ulong gpa, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            var r = RegionOrThrow(gpa, source.Length);
            int n = (int)Math.Min((ulong)source.Length, r.GuestEnd - gpa);
            source[..n].CopyTo(new Span<byte>(r.Host + (gpa - r.GuestBase), n));
            r.Dirty.MarkRange(gpa - r.GuestBase, (ulong)n);
            WriteObserver?.Invoke(gpa, (ulong)n);
            source = source[n..];
            gpa += (ulong)n;
        }
    }

    public T Read<T>(ulong gpa) where T : unmanaged
    {
        T value;
        Read(gpa, new Span<byte>(&value, sizeof(T)));
        return value;
    }

    public void Write<T>(ulong gpa, T value) where T : unmanaged => Write(gpa, new ReadOnlySpan<byte>(&value, sizeof(T)));

    /// <summary>Zeroes [gpa, gpa+length), which must lie in one region.</summary>
    public void Clear(ulong gpa, ulong length)
    {
        var r = RegionOrThrow(gpa, 1);
        if (!r.Contains(gpa, length)) throw OutOfRam(gpa, length);
        NativeMemory.Clear(r.Host + (gpa - r.GuestBase), (nuint)length);
        r.Dirty.MarkRange(gpa - r.GuestBase, length);
        WriteObserver?.Invoke(gpa, length);
    }

    private byte* Check(ulong gpa, int length, out MemoryRegion region)
    {
        ThrowIfDisposed();
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length));
        var r = FindRegion(gpa);
        if (r is null || !r.Contains(gpa, (ulong)length)) throw OutOfRam(gpa, (ulong)length);
        region = r;
        return r.Host + (gpa - r.GuestBase);
    }

    private MemoryRegion RegionOrThrow(ulong gpa, int length)
    {
        ThrowIfDisposed();
        return FindRegion(gpa) ?? throw OutOfRam(gpa, (ulong)length);
    }

    private static GuestMemoryException OutOfRam(ulong gpa, ulong length)
        => new($"guest-physical range 0x{gpa:x}+0x{length:x} is not guest RAM");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var r in _regions) { FileMappingFaults.Forget((nint)r.Host); Libc.Munmap((nint)r.Host, (nuint)r.Size); }
    }
}
