using System.Buffers.Binary;
using SharpVmm.Devices.Virtio;
using SharpVmm.Memory;

namespace SharpVmm.Fuzz.Targets;

/// <summary>
/// A split virtqueue as a hostile driver lays it out: the input's first 8 bytes pick the queue size, features and
/// ring addresses, the rest is guest RAM (descriptor tables, rings, indirect tables). The device side pops every
/// chain, reads what it may read, writes what it may write and returns it, as virtio-blk and net do.
/// </summary>
public static class VirtqueueTarget
{
    private const ulong RamSize = 0x10000;
    private static readonly GuestMemory s_memory = GuestMemory.Create(RamSize);
    private static readonly byte[] s_buffer = new byte[0x10000];

    public static void Run(byte[] data)
    {
        if (data.Length < 8) return;
        s_memory.Clear(0, RamSize);
        s_memory.Write(0, data.AsSpan(8, (int)Math.Min((ulong)(data.Length - 8), RamSize)));
        var q = new Virtqueue(s_memory, 256)
        {
            Size = (ushort)(1 << (data[0] % 10)), // 1..512: sizes over the maximum are refused by Activate
            DescTableAddress = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(2)),
            AvailRingAddress = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(4)),
            UsedRingAddress = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(6)),
        };
        ulong features = ((data[1] & 1) != 0 ? VirtioFeatures.EventIdx : 0) | ((data[1] & 2) != 0 ? VirtioFeatures.IndirectDesc : 0);
        try
        {
            q.Activate(features);
            for (int i = 0; i < 512 && q.TryPop(out var chain); i++)
            {
                int read = chain.ReadFrom(0, s_buffer.AsSpan(0, (int)Math.Min(chain.ReadableLength, (ulong)s_buffer.Length)));
                int written = chain.WriteTo(0, s_buffer.AsSpan(0, (int)Math.Min(chain.WritableLength, (ulong)read + 16)));
                q.AddUsed(chain.Head, (uint)written);
                q.ShouldInterrupt();
            }
            q.EnableNotifications();
        }
        catch (VirtqueueException) { }
    }
}
