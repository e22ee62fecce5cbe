using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Memory;

namespace SharpVmm.Devices.Virtio.Balloon;

/// <summary>
/// virtio-balloon (device ID 5, virtio 1.x 5.5). The host sets a target (<see cref="SetTargetPages"/>, config
/// num_pages); the driver inflates towards it by handing 4 KiB pages over on the inflate queue, whose host memory is
/// given back at once (MADV_DONTNEED), and deflates by taking pages back on the deflate queue; it reports its balloon
/// size in config actual. With VIRTIO_BALLOON_F_STATS_VQ the driver posts a statistics buffer that the device holds
/// and returns (<see cref="RequestStats"/>) when it wants fresh figures. Every PFN is untrusted: one outside guest RAM
/// is refused and counted, and host memory outside RAM is never touched.
/// </summary>
public sealed partial class VirtioBalloon : IVirtioDevice
{
    public const int MustTellHostBit = 0, StatsVqBit = 1, DeflateOnOomBit = 2;
    public const int InflateQueue = 0, DeflateQueue = 1, StatsQueue = 2;
    public const ushort QueueSize = 128;
    public const int PageShift = 12;
    public const uint PageSize = 1u << PageShift;
    /// <summary>PFNs read from one request at most (Linux sends 256): a hostile 4 GiB buffer cannot pin a vCPU.</summary>
    public const int MaxPfnsPerRequest = 64 * 1024;
    /// <summary>Statistics read from one stats buffer at most (Linux reports about ten).</summary>
    public const int MaxStats = 64;

    private const int StatSize = 10; // le16 tag, le64 value, packed
    private const int PfnBatch = 512;

    private readonly GuestMemory _memory;
    private readonly ILogger _log;
    private readonly ChainHandler _inflate, _deflate;
    private readonly BalloonPageSet _pages;
    private readonly ulong _pageCount;
    private readonly object _statsLock = new();
    private volatile VirtioDeviceContext? _context;
    private uint _targetPages, _actualPages;
    private int? _heldStatsHead;
    private IReadOnlyDictionary<string, ulong> _stats = new Dictionary<string, ulong>();
    private DateTime? _statsUpdated;
    private long _refusedPfns;
    private bool _warnedRefused;

    public VirtioBalloon(GuestMemory memory, bool deflateOnOom = false, ILogger? logger = null)
    {
        _memory = memory;
        _log = logger ?? NullLogger.Instance;
        DeflateOnOom = deflateOnOom;
        ulong end = 0;
        foreach (var r in memory.Regions) end = Math.Max(end, r.GuestEnd);
        _pageCount = end >> PageShift;
        _pages = new BalloonPageSet(_pageCount);
        _inflate = chain => ServePfns(chain, inflate: true);
        _deflate = chain => ServePfns(chain, inflate: false);
    }

    public uint DeviceId => 5;
    public bool DeflateOnOom { get; }
    public ulong Features => VirtioFeatures.Common | (1UL << StatsVqBit) | (DeflateOnOom ? 1UL << DeflateOnOomBit : 0);
    public int QueueCount => 3;
    public ushort MaxQueueSize(int queue) => QueueSize;
    /// <summary>num_pages and actual; the free-page-hint and poison fields exist only with features not offered.</summary>
    public int ConfigSize => 8;

    /// <summary>Guest RAM in bytes, what QMP's balloon target is measured against.</summary>
    public ulong GuestRamBytes => _memory.TotalSize;

    /// <summary>The host's target balloon size in 4 KiB pages (config num_pages).</summary>
    public uint TargetPages => Volatile.Read(ref _targetPages);

    /// <summary>The balloon size the driver last reported (config actual), in 4 KiB pages.</summary>
    public uint ActualPages => Volatile.Read(ref _actualPages);

    /// <summary>Pages the driver handed over and the host discarded, and has not taken back.</summary>
    public ulong InflatedPages { get { lock (_statsLock) return _pages.Count; } }

    /// <summary>PFNs the driver gave that lie outside guest RAM (ignored).</summary>
    public long RefusedPfns => Interlocked.Read(ref _refusedPfns);

    /// <summary>True once a driver set DRIVER_OK and until it resets the device.</summary>
    public bool DriverActive => _context is not null;

    /// <summary>The driver changed config actual; the argument is the new balloon size in pages. Raised on the vCPU thread.</summary>
    public event Action<uint>? ActualChanged;

    /// <summary>The last statistics the driver reported, by QEMU's names (stat-free-memory, ...), and when.</summary>
    public (IReadOnlyDictionary<string, ulong> Stats, DateTime? Updated) LastStats
    {
        get { lock (_statsLock) return (_stats, _statsUpdated); }
    }

    /// <summary>Sets the target balloon size and tells the driver (configuration-change interrupt) if one is running.</summary>
    public void SetTargetPages(uint pages)
    {
        Volatile.Write(ref _targetPages, pages);
        _context?.SignalConfigChange();
    }

    /// <summary>
    /// Hands the held statistics buffer back so the driver refills and reposts it; false when there is none to return
    /// (no driver, STATS_VQ not negotiated, or the driver has not reposted the last one yet).
    /// </summary>
    public bool RequestStats()
    {
        var c = _context;
        if (c is null || !c.HasFeature(StatsVqBit)) return false;
        bool returned = false;
        c.RunExclusive(ctx =>
        {
            if (_heldStatsHead is not { } head) return;
            _heldStatsHead = null;
            var q = ctx.Queues[StatsQueue];
            q.AddUsed((ushort)head, 0);
            ctx.SignalUsed(q);
            returned = true;
        });
        return returned;
    }

    public void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(config, TargetPages);
        BinaryPrimitives.WriteUInt32LittleEndian(config[4..], ActualPages);
        config.Slice(offset, data.Length).CopyTo(data);
    }

    public void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        // Only actual (bytes 4..7) is the driver's to write; num_pages is read-only for it.
        Span<byte> actual = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(actual, ActualPages);
        bool touched = false;
        for (int i = 0; i < data.Length; i++)
        {
            int at = offset + i - 4;
            if (at is >= 0 and < 4) { actual[at] = data[i]; touched = true; }
        }
        if (!touched) return;
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(actual);
        uint old = Interlocked.Exchange(ref _actualPages, value);
        if (old != value) ActualChanged?.Invoke(value);
    }

    public void Activate(VirtioDeviceContext context)
    {
        lock (_statsLock) _heldStatsHead = null;
        _warnedRefused = false;
        _context = context;
        // Linux posts its first stats buffer and kicks during probe, before DRIVER_OK, when the transport ignores
        // notifications: serve whatever is already waiting now that buffers may be used.
        for (int q = 0; q < QueueCount; q++)
            if (context.Queues[q].HasAvailable) QueueNotify(q);
    }

    public void Reset()
    {
        _context = null;
        lock (_statsLock)
        {
            _heldStatsHead = null;
            // A reset driver starts with an empty balloon: every page is the guest's again.
            _pages.Clear();
        }
        uint old = Interlocked.Exchange(ref _actualPages, 0);
        if (old != 0) ActualChanged?.Invoke(0);
    }

    public void QueueNotify(int queue)
    {
        if (_context is not { } c) return;
        switch (queue)
        {
            case InflateQueue: c.Drain(c.Queues[queue], _inflate); break;
            case DeflateQueue: c.Drain(c.Queues[queue], _deflate); break;
            case StatsQueue: ServeStats(c); break;
        }
    }

    private uint ServePfns(DescriptorChain chain, bool inflate)
    {
        Span<byte> raw = stackalloc byte[PfnBatch * 4];
        ulong total = Math.Min(chain.ReadableLength / 4, MaxPfnsPerRequest);
        if (chain.ReadableLength / 4 > MaxPfnsPerRequest)
            _log.LogWarning("virtio-balloon: a request of {N} PFNs exceeds {Max}; the rest is ignored", chain.ReadableLength / 4, MaxPfnsPerRequest);
        // Consecutive PFNs are discarded with one madvise.
        ulong runStart = 0, runLength = 0;
        for (ulong done = 0; done < total;)
        {
            int n = (int)Math.Min(PfnBatch, total - done);
            chain.ReadFrom(done * 4, raw[..(n * 4)]);
            for (int i = 0; i < n; i++)
            {
                ulong pfn = BinaryPrimitives.ReadUInt32LittleEndian(raw[(i * 4)..]);
                ulong gpa = pfn << PageShift;
                if (pfn >= _pageCount || !_memory.IsRam(gpa, PageSize))
                {
                    Refuse(pfn);
                    continue;
                }
                if (!inflate)
                {
                    lock (_statsLock) _pages.Remove(pfn);
                    continue;
                }
                bool added;
                lock (_statsLock) added = _pages.Add(pfn);
                if (!added) continue;
                if (runLength > 0 && gpa == runStart + runLength && _memory.IsRam(runStart, runLength + PageSize))
                {
                    runLength += PageSize;
                    continue;
                }
                if (runLength > 0) _memory.Discard(runStart, runLength);
                runStart = gpa;
                runLength = PageSize;
            }
            done += (ulong)n;
        }
        if (runLength > 0) _memory.Discard(runStart, runLength);
        return 0;
    }

    private void Refuse(ulong pfn)
    {
        Interlocked.Increment(ref _refusedPfns);
        if (_warnedRefused) return;
        _warnedRefused = true; // once per activation: a hostile driver must not flood the log
        _log.LogWarning("virtio-balloon: the driver gave PFN 0x{Pfn:x}, which is not guest RAM; refused (further ones are counted silently)", pfn);
    }

    private void ServeStats(VirtioDeviceContext c)
    {
        var q = c.Queues[StatsQueue];
        Span<byte> raw = stackalloc byte[MaxStats * StatSize];
        q.DisableNotifications();
        do
        {
            while (q.TryPop(out var chain))
            {
                int n = chain.ReadFrom(0, raw) / StatSize;
                var stats = new Dictionary<string, ulong>(n);
                for (int i = 0; i < n; i++)
                {
                    var entry = raw.Slice(i * StatSize, StatSize);
                    stats[BalloonStat.Name(BinaryPrimitives.ReadUInt16LittleEndian(entry))] = BinaryPrimitives.ReadUInt64LittleEndian(entry[2..]);
                }
                int? previous;
                lock (_statsLock)
                {
                    _stats = stats;
                    _statsUpdated = DateTime.UtcNow;
                    previous = _heldStatsHead;
                    _heldStatsHead = chain.Head;
                }
                // A driver that posts a second buffer gets the first one back rather than leaking it.
                if (previous is { } old) q.AddUsed((ushort)old, 0);
            }
        } while (q.EnableNotifications());
        c.SignalUsed(q);
    }
}
