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

    public Ring(ushort size = 8, GuestMemory? memory = null)
    {
        Memory = memory ?? GuestMemory.Create([(0UL, RamEnd), (HighBase, HighEnd - HighBase)]);
        Size = size;
    }

    public Virtqueue CreateQueue(ulong features = VirtioFeatures.Common, ushort maxSize = 0)
    {
        var q = new Virtqueue(Memory, maxSize == 0 ? Size : maxSize) { Size = Size };
        Program(q);
        q.Activate(features);
        return q;
    }

    public void Program(Virtqueue q)
    {
        q.DescTableAddress = Desc;
        q.AvailRingAddress = Avail;
        q.UsedRingAddress = Used;
    }

    public void SetDesc(int i, ulong addr, uint len, ushort flags = 0, ushort next = 0, ulong table = Desc)
    {
        ulong e = table + 16UL * (uint)i;
        Memory.Write(e, addr);
        Memory.Write(e + 8, len);
        Memory.Write(e + 12, flags);
        Memory.Write(e + 14, next);
    }

    public void Offer(ushort head)
    {
        Memory.Write(Avail + 4 + 2UL * (uint)(_availIdx % Size), head);
        _availIdx++;
        Memory.Write(Avail + 2, _availIdx);
    }

    public void SetAvailIdx(ushort idx) { _availIdx = idx; Memory.Write(Avail + 2, idx); }
    public ushort UsedIdx => Memory.Read<ushort>(Used + 2);
    public ushort UsedFlags => Memory.Read<ushort>(Used);
    public (uint Id, uint Len) UsedElem(int i) => (Memory.Read<uint>(Used + 4 + 8UL * (uint)(i % Size)), Memory.Read<uint>(Used + 8 + 8UL * (uint)(i % Size)));
    public void SetUsedEvent(ushort v) => Memory.Write(Avail + 4 + 2UL * Size, v);
    public ushort AvailEvent => Memory.Read<ushort>(Used + 4 + 8UL * Size);
    public void SetAvailFlags(ushort f) => Memory.Write(Avail, f);

    public void Dispose() => Memory.Dispose();
}
