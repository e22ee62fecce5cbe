using System.Buffers.Binary;

namespace SharpVmm.Block.Qcow2;

/// <summary>
/// How wide a refcount is (refcount_order: 2^order bits, 1 to 64) and how entries of that width sit in a refcount
/// block: big-endian for 8 bits and more, packed from the least significant bit of each byte below that.
/// </summary>
internal readonly struct RefcountWidth
{
    public RefcountWidth(int order)
    {
        if (order is < 0 or > 6) throw new ArgumentOutOfRangeException(nameof(order), order, "refcount_order is 0 to 6");
        Order = order;
    }

    public int Order { get; }
    public int Bits => 1 << Order;
    public ulong Max => Order == 6 ? ulong.MaxValue : (1UL << Bits) - 1;

    /// <summary>log2 of the entries a cluster-sized refcount block holds.</summary>
    public int EntriesPerBlockBits(int clusterBits) => clusterBits + 3 - Order;

    public ulong Read(byte[] block, int i)
    {
        switch (Order)
        {
            case 3: return block[i];
            case 4: return BinaryPrimitives.ReadUInt16BigEndian(block.AsSpan(i * 2));
            case 5: return BinaryPrimitives.ReadUInt32BigEndian(block.AsSpan(i * 4));
            case 6: return BinaryPrimitives.ReadUInt64BigEndian(block.AsSpan(i * 8));
            default:
                var bits = Bits;
                var bit = i * bits;
                return (ulong)((block[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1));
        }
    }

    public void Write(byte[] block, int i, ulong v)
    {
        switch (Order)
        {
            case 3: block[i] = (byte)v; break;
            case 4: BinaryPrimitives.WriteUInt16BigEndian(block.AsSpan(i * 2), (ushort)v); break;
            case 5: BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(i * 4), (uint)v); break;
            case 6: BinaryPrimitives.WriteUInt64BigEndian(block.AsSpan(i * 8), v); break;
            default:
                var bits = Bits;
                var bit = i * bits;
                var mask = ((1 << bits) - 1) << (bit & 7);
                block[bit >> 3] = (byte)((block[bit >> 3] & ~mask) | (((int)v << (bit & 7)) & mask));
                break;
        }
    }
}
