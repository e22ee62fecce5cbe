using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVmm.Memory;

namespace SharpVmm.Devices.Virtio;

/// <summary>
/// A split virtqueue (virtio 1.x, 2.7) over guest RAM, independent of device and transport. Everything the guest
/// wrote is untrusted: ring placement is checked when the queue is activated, every chain is walked and checked
/// completely before the device sees it, and a violation throws <see cref="VirtqueueException"/>. Not thread-safe:
/// one thread at a time pops and completes (the transport serialises).
/// </summary>
public sealed partial class Virtqueue
{
    /// <summary>Largest indirect table accepted (Linux never builds one beyond the device's seg_max + 2).</summary>
    public const int MaxIndirectDescriptors = 1024;

    private const ushort DescFlagNext = 1, DescFlagWrite = 2, DescFlagIndirect = 4;
    private const ushort AvailFlagNoInterrupt = 1;
    private const ushort UsedFlagNoNotify = 1;

    private readonly GuestMemory _memory;
    private readonly VirtqDescriptor[] _chain;
    private readonly int[] _visited; // stamp per descriptor index: loop detection without clearing per chain
    private readonly bool[] _inFlight;
    private int _stamp;
    private ushort _lastAvail, _nextUsed, _signalledUsed;

    public Virtqueue(GuestMemory memory, ushort maxSize)
    {
        if (maxSize == 0 || (maxSize & (maxSize - 1)) != 0 || maxSize > 32768)
            throw new ArgumentOutOfRangeException(nameof(maxSize), "a split virtqueue's size is a power of 2 up to 32768");
        _memory = memory;
        MaxSize = maxSize;
        Size = maxSize;
        _chain = new VirtqDescriptor[maxSize + MaxIndirectDescriptors];
        _visited = new int[Math.Max((int)maxSize, MaxIndirectDescriptors)];
        _inFlight = new bool[maxSize];
    }

    public ushort MaxSize { get; }
    /// <summary>The driver's QueueNum.</summary>
    public ushort Size { get; set; }
    public ulong DescTableAddress { get; set; }
    public ulong AvailRingAddress { get; set; }
    public ulong UsedRingAddress { get; set; }
    public bool IsActive { get; private set; }
    public bool EventIdx { get; private set; }
    public bool IndirectDescriptors { get; private set; }
    public ushort LastAvailIndex => _lastAvail;
    public ushort NextUsedIndex => _nextUsed;

    /// <summary>Checks the layout the driver programmed and starts using it with the negotiated <paramref name="features"/>.</summary>
    public void Activate(ulong features)
    {
        ushort n = Size;
        if (n == 0 || n > MaxSize || (n & (n - 1)) != 0)
            throw Bad(VirtqueueError.BadQueueLayout, $"queue size {n} is not a power of 2 between 1 and {MaxSize}");
        CheckArea("descriptor table", DescTableAddress, 16UL * n, 16);
        CheckArea("available ring", AvailRingAddress, 6UL + 2UL * n, 2);
        CheckArea("used ring", UsedRingAddress, 6UL + 8UL * n, 4);
        EventIdx = (features & VirtioFeatures.EventIdx) != 0;
        IndirectDescriptors = (features & VirtioFeatures.IndirectDesc) != 0;
        _lastAvail = _nextUsed = _signalledUsed = 0;
        Array.Clear(_inFlight);
        IsActive = true;
    }

    private void CheckArea(string what, ulong address, ulong length, uint align)
    {
        if ((address & (align - 1)) != 0)
            throw Bad(VirtqueueError.BadQueueLayout, $"the {what} at 0x{address:x} is not {align}-byte aligned");
        if (address + length < address || !_memory.IsRam(address, length))
            throw Bad(VirtqueueError.AddressOutsideRam, $"the {what} at 0x{address:x}+0x{length:x} is not inside guest RAM");
    }

    /// <summary>Back to the state after construction; the driver programs the queue again.</summary>
    public void Reset()
    {
        IsActive = false;
        EventIdx = IndirectDescriptors = false;
        Size = MaxSize;
        DescTableAddress = AvailRingAddress = UsedRingAddress = 0;
        _lastAvail = _nextUsed = _signalledUsed = 0;
        Array.Clear(_inFlight);
    }

    /// <summary>True when the driver has made buffers available that were not popped yet.</summary>
    public bool HasAvailable => IsActive && ReadAvailIndexAcquire() != _lastAvail;

    /// <summary>
    /// Takes the next available chain, or returns false when there is none. Throws <see cref="VirtqueueException"/>
    /// when the guest's ring or descriptors break the rules; the queue must then be reset.
    /// </summary>
    public bool TryPop(out DescriptorChain chain)
    {
        if (!IsActive) throw new InvalidOperationException("the virtqueue is not active");
        ushort availIdx = ReadAvailIndexAcquire();
        ushort pending = (ushort)(availIdx - _lastAvail);
        if (pending == 0) { chain = default; return false; }
        if (pending > Size)
            throw Bad(VirtqueueError.AvailIndexJump,
                $"the available index jumped from {_lastAvail} to {availIdx}, more than the queue size {Size}");
        ushort head = _memory.Read<ushort>(AvailRingAddress + 4 + 2UL * (uint)(_lastAvail % Size));
        _lastAvail++;
        chain = Walk(head);
        return true;
    }

    private DescriptorChain Walk(ushort head)
    {
        if (head >= Size)
            throw Bad(VirtqueueError.DescriptorIndexOutOfRange, $"head descriptor {head} is not below the queue size {Size}");
        if (_inFlight[head])
            throw Bad(VirtqueueError.DescriptorIndexOutOfRange, $"head descriptor {head} was made available again before the device used it");
        NextStamp();
        ulong table = DescTableAddress;
        int tableSize = Size;
        bool indirect = false, seenWritable = false;
        int count = 0, readable = 0;
        ulong readLen = 0, writeLen = 0;
        uint idx = head;
        while (true)
        {
            if (idx >= tableSize)
                throw Bad(VirtqueueError.DescriptorIndexOutOfRange, $"descriptor index {idx} is not below {tableSize} (chain from head {head})");
            // Every index is visited at most once, so a chain longer than its table is caught here as a loop.
            if (_visited[idx] == _stamp)
                throw Bad(VirtqueueError.DescriptorLoop,
                    $"the chain from head {head} loops back to descriptor {idx} (or is longer than its {tableSize}-entry table)");
            _visited[idx] = _stamp;

            ulong entry = table + 16UL * idx;
            ulong addr = _memory.Read<ulong>(entry);
            uint len = _memory.Read<uint>(entry + 8);
            ushort flags = _memory.Read<ushort>(entry + 12);
            ushort next = _memory.Read<ushort>(entry + 14);

            if ((flags & DescFlagIndirect) != 0)
            {
                if (!IndirectDescriptors)
                    throw Bad(VirtqueueError.BadIndirect, $"descriptor {idx} is INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated");
                if (indirect)
                    throw Bad(VirtqueueError.BadIndirect, $"indirect table entry {idx} is itself INDIRECT (nested tables are forbidden)");
                if (count != 0 || (flags & DescFlagNext) != 0)
                    throw Bad(VirtqueueError.BadIndirect, $"descriptor {idx} is INDIRECT but not the only descriptor of its chain");
                if (len == 0 || len % 16 != 0)
                    throw Bad(VirtqueueError.BadIndirect, $"indirect table length {len} is not a non-zero multiple of 16");
                if (len / 16 > MaxIndirectDescriptors)
                    throw Bad(VirtqueueError.ChainTooLong, $"indirect table of {len / 16} descriptors exceeds {MaxIndirectDescriptors}");
                if (addr + len < addr || !_memory.IsRam(addr, len))
                    throw Bad(VirtqueueError.AddressOutsideRam, $"indirect table 0x{addr:x}+0x{len:x} is not inside guest RAM");
                table = addr;
                tableSize = (int)(len / 16);
                indirect = true;
                idx = 0;
                NextStamp();
                continue;
            }

            bool writable = (flags & DescFlagWrite) != 0;
            if (!writable && seenWritable)
                throw Bad(VirtqueueError.WrongDirection, $"descriptor {idx} is device-readable after a device-writable one (chain from head {head})");
            seenWritable |= writable;
            if (len != 0)
            {
                if (addr + len < addr || !_memory.IsRam(addr, len))
                    throw Bad(VirtqueueError.AddressOutsideRam, $"buffer 0x{addr:x}+0x{len:x} of descriptor {idx} is not inside guest RAM");
                _chain[count++] = new VirtqDescriptor(addr, len, writable);
                if (writable) writeLen += len;
                else { readable++; readLen += len; }
            }
            if ((flags & DescFlagNext) == 0) break;
            idx = next;
        }
        _inFlight[head] = true;
        return new DescriptorChain(_memory, head, _chain.AsSpan(0, count), readable, readLen, writeLen);
    }

    private void NextStamp()
    {
        if (++_stamp == 0) { Array.Clear(_visited); _stamp = 1; }
    }

    /// <summary>Puts the device's answer for <paramref name="head"/> in the used ring: element first, then the index (release).</summary>
    public void AddUsed(ushort head, uint writtenLength)
    {
        if (!IsActive) throw new InvalidOperationException("the virtqueue is not active");
        if (head >= Size || !_inFlight[head])
            throw Bad(VirtqueueError.BadUsedEntry, $"descriptor {head} is not a chain the device popped");
        _inFlight[head] = false;
        ulong element = UsedRingAddress + 4 + 8UL * (uint)(_nextUsed % Size);
        _memory.Write(element, (uint)head);
        _memory.Write(element + 4, writtenLength);
        _nextUsed++;
        Volatile.Write(ref WritableRingWord(UsedRingAddress + 2), _nextUsed);
    }

    /// <summary>
    /// Whether the driver wants an interrupt for what was added to the used ring since the last call (used_event with
    /// EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT otherwise). Call after a batch of <see cref="AddUsed"/>.
    /// </summary>
    public bool ShouldInterrupt()
    {
        if (!IsActive) return false;
        // The used index store must be visible before the driver's used_event/flags are read (store-load ordering).
        Interlocked.MemoryBarrier();
        ushort old = _signalledUsed, now = _nextUsed;
        _signalledUsed = now;
        if (old == now) return false;
        if (EventIdx)
        {
            ushort usedEvent = _memory.Read<ushort>(AvailRingAddress + 4 + 2UL * Size);
            return (ushort)(now - usedEvent - 1) < (ushort)(now - old);
        }
        return (_memory.Read<ushort>(AvailRingAddress) & AvailFlagNoInterrupt) == 0;
    }

    /// <summary>Asks the driver not to notify (VRING_USED_F_NO_NOTIFY; with EVENT_IDX a stale avail_event does this).</summary>
    public void DisableNotifications()
    {
        if (IsActive && !EventIdx) _memory.Write(UsedRingAddress, UsedFlagNoNotify);
    }

    /// <summary>
    /// Asks the driver to notify for the next buffer (avail_event = last seen index with EVENT_IDX), then re-reads the
    /// available index: true means buffers arrived meanwhile and the device must keep popping.
    /// </summary>
    public bool EnableNotifications()
    {
        if (!IsActive) return false;
        if (EventIdx) _memory.Write(UsedRingAddress + 4 + 8UL * Size, _lastAvail);
        else _memory.Write(UsedRingAddress, (ushort)0);
        Interlocked.MemoryBarrier();
        return ReadAvailIndexAcquire() != _lastAvail;
    }

    private ushort ReadAvailIndexAcquire() => Volatile.Read(ref RingWord(AvailRingAddress + 2));

    // The rings were checked to lie in RAM and be aligned when the queue was activated, so the span is valid.
    private ref ushort RingWord(ulong gpa)
        => ref Unsafe.As<byte, ushort>(ref MemoryMarshal.GetReference(_memory.GetReadOnlySpan(gpa, 2)));

    private ref ushort WritableRingWord(ulong gpa) // marks the page dirty for migration
        => ref Unsafe.As<byte, ushort>(ref MemoryMarshal.GetReference(_memory.GetWritableSpan(gpa, 2)));

    private static VirtqueueException Bad(VirtqueueError e, string message) => new(e, "virtqueue: " + message);
}
