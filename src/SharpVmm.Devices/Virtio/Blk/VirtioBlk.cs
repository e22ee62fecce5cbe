using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Block;
using SharpVmm.Core;
using SharpVmm.Core.Io;
using static SharpVmm.Devices.Virtio.Blk.VirtioBlkConstants;

namespace SharpVmm.Devices.Virtio.Blk;

/// <summary>
/// virtio-blk (device ID 2) over an <see cref="IBlockImage"/>, one request queue, reading and writing straight between
/// the image and guest RAM. Requests are served either synchronously on the notifying vCPU's thread (the transport
/// serialises them) or, with <c>ioThread</c>, by one I/O worker thread per disk that the notification only wakes: the
/// vCPU runs on while the image is read or written, and completions interrupt the guest from the worker. One worker
/// serves requests strictly in ring order, so a flush completes after every write made available before it. A
/// device reset waits for the request in flight (<see cref="VirtioDeviceContext.RunQueueWork"/>). Every request gets a status byte: a bad sector range, a malformed request or an image error is IOERR,
/// an unknown or unnegotiated type UNSUPP; only a request with nowhere to put its status is a protocol error.
/// </summary>
public sealed partial class VirtioBlk : IVirtioDevice, IDrainOnPause, IDisposable
{
    public const ushort QueueSize = 256;
    /// <summary>Data segments per request the driver may use (seg_max): the queue minus header and status.</summary>
    public const uint SegMax = QueueSize - 2;
    public const uint MaxDiscardSectors = 1u << 22, MaxWriteZeroesSectors = 1u << 22;
    public const uint MaxDiscardSegments = 32, MaxWriteZeroesSegments = 32;
    private const int ChunkBytes = 1 << 20; // guest buffers are mapped into spans at most this big

    private readonly IBlockImage _image;
    private readonly byte[] _id = new byte[IdBytes];
    private readonly ILogger _log;
    private readonly ChainHandler _handler;
    private readonly Func<VirtioDeviceContext, bool> _step;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly object _workerGate = new();
    private readonly ManualResetEventSlim _idle = new(true);
    private Thread? _worker;
    private volatile bool _disposed;
    private volatile VirtioDeviceContext? _context;

    /// <param name="image">The disk; opened read-only or <paramref name="readOnly"/> makes the device read-only.</param>
    /// <param name="serial">What GET_ID returns: up to 20 ASCII characters.</param>
    /// <param name="ioThread">Serve requests on a worker thread of this disk instead of the notifying vCPU's.</param>
    public VirtioBlk(IBlockImage image, string? serial = null, bool readOnly = false, ILogger? logger = null, bool ioThread = false)
    {
        IoThread = ioThread;
        _step = Step;
        _image = image;
        ReadOnly = readOnly || image.IsReadOnly;
        _log = logger ?? NullLogger.Instance;
        if (serial is not null)
        {
            if (serial.Length > IdBytes || !Ascii.IsValid(serial))
                throw new ConfigurationException($"virtio-blk serial '{serial}' must be at most {IdBytes} ASCII characters");
            Encoding.ASCII.GetBytes(serial, _id);
        }
        _handler = Serve;
    }

    public bool ReadOnly { get; }
    public bool IoThread { get; }

    /// <summary>The requests served so far, per kind (QEMU's block accounting, read by query-blockstats).</summary>
    public BlockStats Stats { get; } = new();
    public uint DeviceId => 2;
    public int QueueCount => 1;
    public ushort MaxQueueSize(int queue) => QueueSize;
    public int ConfigSize => ConfigBytes;

    public ulong Features
    {
        get
        {
            ulong f = VirtioFeatures.Common | 1UL << FeatureSegMax | 1UL << FeatureBlkSize | 1UL << FeatureFlush;
            if (ReadOnly) f |= 1UL << FeatureRo;
            else f |= 1UL << FeatureDiscard | 1UL << FeatureWriteZeroes;
            return f;
        }
    }

    private ulong CapacitySectors => (ulong)_image.Size / SectorSize;

    public void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> c = stackalloc byte[ConfigBytes];
        c.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(c, CapacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[12..], SegMax);
        BinaryPrimitives.WriteUInt32LittleEndian(c[20..], SectorSize);
        BinaryPrimitives.WriteUInt16LittleEndian(c[34..], 1); // num_queues
        BinaryPrimitives.WriteUInt32LittleEndian(c[36..], MaxDiscardSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[40..], MaxDiscardSegments);
        BinaryPrimitives.WriteUInt32LittleEndian(c[44..], 1); // discard_sector_alignment
        BinaryPrimitives.WriteUInt32LittleEndian(c[48..], MaxWriteZeroesSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[52..], MaxWriteZeroesSegments);
        c[56] = 1; // write_zeroes_may_unmap
        c.Slice(offset, data.Length).CopyTo(data);
    }

    public void WriteConfig(int offset, ReadOnlySpan<byte> data) { } // nothing writable without CONFIG_WCE

    public void Activate(VirtioDeviceContext context)
    {
        _context = context;
        if (IoThread) EnsureWorker();
    }

    // Called under the transport's queue lock, so no request is in flight on the worker.
    public void Reset() => _context = null;

    public void QueueNotify(int queue)
    {
        if (_context is not { } c) return;
        if (!IoThread) c.Drain(c.Queues[queue], _handler);
        else Wake();
    }

    private void Wake()
    {
        // At most one pending wake-up: the worker drains everything available each time it wakes.
        lock (_idle)
        {
            if (_disposed) return;
            _idle.Reset();
            if (_wake.CurrentCount == 0) _wake.Release();
        }
    }

    /// <summary>
    /// Waits until the I/O worker has served everything the driver made available and touches guest RAM no more
    /// (for snapshots and migration, after the vCPUs are paused). True at once without a worker; false on timeout.
    /// </summary>
    public bool WaitIdle(TimeSpan timeout) => _idle.Wait(timeout);

    private void EnsureWorker()
    {
        lock (_workerGate)
        {
            if (_worker is not null || _disposed) return;
            _worker = new Thread(WorkerLoop) { IsBackground = true, Name = "virtio-blk " + System.IO.Path.GetFileName(_image.Path) };
            _worker.Start();
        }
    }

    private void WorkerLoop()
    {
        while (true)
        {
            _wake.Wait();
            if (_disposed) { _idle.Set(); return; }
            // One request per queue-lock hold, so a reset waits for one request at most, not for a whole batch.
            while (!_disposed && _context is { } c && c.RunQueueWork(_step)) { }
            lock (_idle)
            {
                if (_wake.CurrentCount == 0) _idle.Set(); // else a wake-up came meanwhile: not idle yet
            }
        }
    }

    /// <summary>
    /// Serves one available request and interrupts for it at once (the guest consumes it while the next one is
    /// served); true while there may be more. Notifications stay off while the worker is busy.
    /// </summary>
    private bool Step(VirtioDeviceContext c)
    {
        var q = c.Queues[0];
        if (!q.IsActive) return false;
        q.DisableNotifications();
        if (q.TryPop(out var chain))
        {
            q.AddUsed(chain.Head, Serve(chain));
            c.SignalUsed(q);
            return true;
        }
        if (q.EnableNotifications()) return true; // arrived meanwhile: no notification will come for it
        c.SignalUsed(q);
        return false;
    }

    public void Dispose()
    {
        Thread? worker;
        lock (_workerGate)
        {
            if (_disposed) return;
            _disposed = true;
            worker = _worker;
        }
        if (worker is not null)
        {
            lock (_idle)
            {
                if (_wake.CurrentCount == 0) _wake.Release();
            }
            worker.Join();
        }
    }

    private uint Serve(DescriptorChain chain)
    {
        var memory = _context!.Memory;
        var writable = chain.Writable;
        if (writable.IsEmpty)
            throw new VirtioProtocolException($"virtio-blk: request at descriptor {chain.Head} has no device-writable byte for its status");
        var last = writable[^1];
        ulong statusAddress = last.Address + last.Length - 1;
        ulong dataIn = chain.WritableLength - 1;
        uint written = 0;
        byte status;
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (chain.ReadFrom(0, header) < HeaderBytes)
            status = StatusIoErr;
        else
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
            long start = Stopwatch.GetTimestamp();
            long bytes = 0;
            bool failed = false;
            try
            {
                status = type switch
                {
                    TypeIn => ReadRequest(chain, sector, dataIn, ref written),
                    TypeOut => WriteRequest(chain, sector),
                    TypeFlush => Flush(),
                    TypeGetId => GetId(chain, dataIn, ref written),
                    TypeDiscard or TypeWriteZeroes => RangeRequest(chain, type, ref bytes),
                    _ => StatusUnsupported,
                };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
            {
                _log.LogError(e, "virtio-blk: request type {Type} at sector {Sector} of {Image} failed: {Message}", type, sector, _image.Path, e.Message);
                status = StatusIoErr;
                failed = true;
            }
            Account(type, sector, type switch { TypeIn => dataIn, TypeOut => chain.ReadableLength - HeaderBytes, _ => (ulong)bytes }, status, failed, start);
        }
        memory.Write(statusAddress, status); // last, after the data
        return written + 1;
    }

    /// <summary>QEMU's accounting: write-zeroes counts as a write, discard as an unmap; GET_ID and unknown types are not I/O.</summary>
    private void Account(uint type, ulong sector, ulong bytes, byte status, bool failed, long start)
    {
        BlockRequestKind kind;
        switch (type)
        {
            case TypeIn: kind = BlockRequestKind.Read; break;
            case TypeOut or TypeWriteZeroes: kind = BlockRequestKind.Write; break;
            case TypeFlush: kind = BlockRequestKind.Flush; break;
            case TypeDiscard: kind = BlockRequestKind.Unmap; break;
            default: return;
        }
        if (failed) Stats.Failed(kind);
        else if (status != StatusOk) Stats.Invalid(kind);
        else Stats.Done(kind, (long)bytes, start, type == TypeOut ? (long)(sector * SectorSize + bytes) : 0);
    }

    private bool InRange(ulong sector, ulong sectors)
    {
        ulong capacity = CapacitySectors;
        return sector <= capacity && sectors <= capacity - sector;
    }

    private byte ReadRequest(DescriptorChain chain, ulong sector, ulong length, ref uint written)
    {
        // Data the device was meant to fill but can only read is a driver error (wrong direction): refuse it whole.
        if (chain.ReadableLength != HeaderBytes) return StatusIoErr;
        if (length % SectorSize != 0 || !InRange(sector, length / SectorSize)) return StatusIoErr;
        var memory = _context!.Memory;
        long offset = (long)(sector * SectorSize);
        ulong remaining = length;
        foreach (var d in chain.Writable)
        {
            ulong n = Math.Min(d.Length, remaining);
            for (ulong done = 0; done < n;)
            {
                int chunk = (int)Math.Min(n - done, ChunkBytes);
                _image.Read(offset, memory.GetWritableSpan(d.Address + done, chunk));
                offset += chunk;
                done += (ulong)chunk;
            }
            remaining -= n;
            if (remaining == 0) break;
        }
        written = (uint)length;
        return StatusOk;
    }

    private byte WriteRequest(DescriptorChain chain, ulong sector)
    {
        if (ReadOnly) return StatusIoErr;
        if (chain.WritableLength != 1) return StatusIoErr; // device-writable data for a write: wrong direction
        ulong length = chain.ReadableLength - HeaderBytes;
        if (length % SectorSize != 0 || !InRange(sector, length / SectorSize)) return StatusIoErr;
        var memory = _context!.Memory;
        long offset = (long)(sector * SectorSize);
        ulong skip = HeaderBytes;
        foreach (var d in chain.Readable)
        {
            if (skip >= d.Length) { skip -= d.Length; continue; }
            ulong n = d.Length - skip;
            for (ulong done = 0; done < n;)
            {
                int chunk = (int)Math.Min(n - done, ChunkBytes);
                _image.Write(offset, memory.GetReadOnlySpan(d.Address + skip + done, chunk));
                offset += chunk;
                done += (ulong)chunk;
            }
            skip = 0;
        }
        return StatusOk;
    }

    private byte Flush()
    {
        if (!ReadOnly) _image.Flush();
        return StatusOk;
    }

    private byte GetId(DescriptorChain chain, ulong dataIn, ref uint written)
    {
        int n = (int)Math.Min(dataIn, IdBytes);
        written = (uint)chain.WriteTo(0, _id.AsSpan(0, n));
        return StatusOk;
    }

    private byte RangeRequest(DescriptorChain chain, uint type, ref long done)
    {
        bool discard = type == TypeDiscard;
        if (!_context!.HasFeature(discard ? FeatureDiscard : FeatureWriteZeroes)) return StatusUnsupported;
        if (ReadOnly) return StatusIoErr;
        ulong bytes = chain.ReadableLength - HeaderBytes;
        uint maxSegments = discard ? MaxDiscardSegments : MaxWriteZeroesSegments;
        uint maxSectors = discard ? MaxDiscardSectors : MaxWriteZeroesSectors;
        if (bytes == 0 || bytes % SegmentBytes != 0 || bytes / SegmentBytes > maxSegments) return StatusIoErr;
        Span<byte> seg = stackalloc byte[SegmentBytes];
        int count = (int)(bytes / SegmentBytes);
        // Check every segment before touching the disk, so a bad one leaves it unchanged.
        for (int pass = 0; pass < 2; pass++)
        {
            for (int i = 0; i < count; i++)
            {
                chain.ReadFrom(HeaderBytes + (ulong)i * SegmentBytes, seg);
                ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(seg);
                uint sectors = BinaryPrimitives.ReadUInt32LittleEndian(seg[8..]);
                uint flags = BinaryPrimitives.ReadUInt32LittleEndian(seg[12..]);
                if (pass == 0)
                {
                    if ((flags & ~(discard ? 0u : SegmentFlagUnmap)) != 0) return StatusUnsupported;
                    if (sectors > maxSectors || !InRange(sector, sectors)) return StatusIoErr;
                    continue;
                }
                long offset = (long)(sector * SectorSize), length = (long)sectors * SectorSize;
                if (discard) _image.Discard(offset, length);
                else _image.WriteZeroes(offset, length, (flags & SegmentFlagUnmap) != 0);
                done += length;
            }
        }
        return StatusOk;
    }
}
