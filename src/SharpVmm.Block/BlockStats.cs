using System.Diagnostics;

namespace SharpVmm.Block;

/// <summary>The kinds of request a disk's front end accounts, as QEMU's block accounting splits them.</summary>
public enum BlockRequestKind { Read, Write, Flush, Unmap }

/// <summary>
/// What a disk's front end (the virtio-blk device) has done: requests, bytes and time per kind, the ones refused as
/// malformed (invalid) and the ones the image failed, the highest byte written. The counters behind QEMU's
/// query-blockstats, which libvirt's domstats and domblkstat read. Written by the thread that serves the requests,
/// read by the monitor's: every counter is updated and read atomically, none allocates.
/// </summary>
public sealed class BlockStats
{
    private const int Kinds = 4;
    private readonly long[] _operations = new long[Kinds];
    private readonly long[] _bytes = new long[Kinds];
    private readonly long[] _ticks = new long[Kinds];
    private readonly long[] _failed = new long[Kinds];
    private readonly long[] _invalid = new long[Kinds];
    private long _highestWrite;
    private long _lastDone; // Stopwatch ticks of the last completion; 0 before the first

    /// <summary>A completed request of <paramref name="bytes"/>, started at <paramref name="startTicks"/> (Stopwatch ticks).</summary>
    public void Done(BlockRequestKind kind, long bytes, long startTicks, long endOffset = 0)
    {
        int k = (int)kind;
        long now = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _operations[k]);
        Interlocked.Add(ref _bytes[k], bytes);
        Interlocked.Add(ref _ticks[k], now - startTicks);
        if (kind == BlockRequestKind.Write)
        {
            long seen = Volatile.Read(ref _highestWrite);
            while (endOffset > seen)
            {
                long was = Interlocked.CompareExchange(ref _highestWrite, endOffset, seen);
                if (was == seen) break;
                seen = was;
            }
        }
        Volatile.Write(ref _lastDone, now);
    }

    /// <summary>A request the image failed (an I/O error on the host).</summary>
    public void Failed(BlockRequestKind kind) => Interlocked.Increment(ref _failed[(int)kind]);

    /// <summary>A request refused before any I/O: out of range, malformed, or a write to a read-only disk.</summary>
    public void Invalid(BlockRequestKind kind) => Interlocked.Increment(ref _invalid[(int)kind]);

    public long Operations(BlockRequestKind kind) => Volatile.Read(ref _operations[(int)kind]);
    public long Bytes(BlockRequestKind kind) => Volatile.Read(ref _bytes[(int)kind]);
    public long FailedOperations(BlockRequestKind kind) => Volatile.Read(ref _failed[(int)kind]);
    public long InvalidOperations(BlockRequestKind kind) => Volatile.Read(ref _invalid[(int)kind]);

    /// <summary>The time the completed requests of a kind took, from their start to their completion, in nanoseconds.</summary>
    public long TotalTimeNs(BlockRequestKind kind) => TicksToNs(Volatile.Read(ref _ticks[(int)kind]));

    /// <summary>The end of the highest write (QEMU's wr_highest_offset), in bytes.</summary>
    public long HighestWriteOffset => Volatile.Read(ref _highestWrite);

    /// <summary>Nanoseconds since the last request completed; null before the first.</summary>
    public long? IdleTimeNs
    {
        get
        {
            long last = Volatile.Read(ref _lastDone);
            return last == 0 ? null : TicksToNs(Stopwatch.GetTimestamp() - last);
        }
    }

    private static long TicksToNs(long ticks) => (long)(ticks * (1_000_000_000.0 / Stopwatch.Frequency));
}
