using SharpVmm.Devices.Virtio;
using SharpVmm.Memory;

namespace SharpVmm.Devices.Tests.Virtio;

/// <summary>A driver's view of one split ring in a small guest RAM (two regions with a hole between them).</summary>
internal sealed class Ring : IDisposable
{
    public const ulong Desc = 0x1000, Avail = 0x2000, Used = 0x3000, Buffers = 0x10000;
    public const ulong RamEnd = 0x40000, HoleStart = 0x40000, HighBase = 0x80000, HighEnd = 0x90000;
    public const ushort Write = 2, Next = 1, Indirect = 4;

    public GuestMemory Memory { get; }
    public ushort Size { get; }
    private ushort _availIdx;

    private readonly bool _ownsMemory;

    public Ring(ushort size = 8, GuestMemory? memory = null, ulong desc = Desc, ulong avail = Avail, ulong used = Used)
    {
        _ownsMemory = memory is null;
        Memory = memory ?? GuestMemory.Create([(0UL, RamEnd), (HighBase, HighEnd - HighBase)]);
        Size = size;
        DescAt = desc;
        AvailAt = avail;
        UsedAt = used;
    }

    public ulong DescAt { get; }
    public ulong AvailAt { get; }
    public ulong UsedAt { get; }

    public Virtqueue CreateQueue(ulong features = VirtioFeatures.Common, ushort maxSize = 0)
    {
        var q = new Virtqueue(Memory, maxSize == 0 ? Size : maxSize) { Size = Size };
        Program(q);
        q.Activate(features);
        return q;
    }

    public void Program(Virtqueue q)
    {
        q.DescTableAddress = DescAt;
        q.AvailRingAddress = AvailAt;
        q.UsedRingAddress = UsedAt;
    }

    public void SetDesc(int i, ulong addr, uint len, ushort flags = 0, ushort next = 0, ulong table = ulong.MaxValue)
    {
        if (table == ulong.MaxValue) table = DescAt;
        ulong e = table + 16UL * (uint)i;
        Memory.Write(e, addr);
        Memory.Write(e + 8, len);
        Memory.Write(e + 12, flags);
        Memory.Write(e + 14, next);
    }

    public void Offer(ushort head)
    {
        Memory.Write(AvailAt + 4 + 2UL * (uint)(_availIdx % Size), head);
        _availIdx++;
        Memory.Write(AvailAt + 2, _availIdx);
    }

    public void SetAvailIdx(ushort idx) { _availIdx = idx; Memory.Write(AvailAt + 2, idx); }
    public ushort UsedIdx => Memory.Read<ushort>(UsedAt + 2);
    public ushort UsedFlags => Memory.Read<ushort>(UsedAt);
    public (uint Id, uint Len) UsedElem(int i) => (Memory.Read<uint>(UsedAt + 4 + 8UL * (uint)(i % Size)), Memory.Read<uint>(UsedAt + 8 + 8UL * (uint)(i % Size)));
    public void SetUsedEvent(ushort v) => Memory.Write(AvailAt + 4 + 2UL * Size, v);
    public ushort AvailEvent => Memory.Read<ushort>(UsedAt + 4 + 8UL * Size);
    public void SetAvailFlags(ushort f) => Memory.Write(AvailAt, f);

    public void Dispose() { if (_ownsMemory) Memory.Dispose(); }
}
