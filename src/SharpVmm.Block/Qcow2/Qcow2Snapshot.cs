using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Block.Qcow2;

/// <summary>An internal snapshot: a frozen L1 table plus the entry in the snapshot table that names it.</summary>
public sealed class Qcow2Snapshot
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public long L1TableOffset { get; init; }
    public int L1Size { get; init; }
    public uint DateSeconds { get; init; }
    public uint DateNanoseconds { get; init; }
    public ulong VmClockNanoseconds { get; init; }
    public long VmStateSize { get; init; }
    public long DiskSize { get; init; }
    public ulong? Icount { get; init; }
    /// <summary>Extra data beyond the fields above, kept so rewriting the table preserves it.</summary>
    internal byte[] ExtraTail { get; init; } = [];

    internal int EntryBytes => (40 + ExtraBytes + Encoding.UTF8.GetByteCount(Id) + Encoding.UTF8.GetByteCount(Name) + 7) & ~7;
    private int ExtraBytes => 16 + (Icount.HasValue ? 8 : 0) + ExtraTail.Length;

    internal static long TableBytes(IReadOnlyList<Qcow2Snapshot> list)
    {
        long n = 0;
        foreach (var s in list) n += s.EntryBytes;
        return n;
    }

    internal static List<Qcow2Snapshot> ReadTable(Qcow2Image img, SafeFileHandle fh, Qcow2Header h, long fileLength)
    {
        var list = new List<Qcow2Snapshot>(h.SnapshotCount);
        if (h.SnapshotCount == 0) return list;
        var path = img.Path;
        var pos = h.SnapshotsOffset;
        var limit = Math.Min(fileLength, h.SnapshotsOffset + (64L << 20));
        Span<byte> fixedPart = stackalloc byte[40];
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < h.SnapshotCount; i++)
        {
            if (pos + 40 > limit) throw Overrun(i);
            ImageFile.ReadExactly(fh, pos, fixedPart, path, "snapshot table");
            var idLen = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[12..]);
            var nameLen = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[14..]);
            var extraLen = BinaryPrimitives.ReadInt32BigEndian(fixedPart[36..]);
            if (extraLen < 0 || extraLen > 1024) throw new ImageCorruptException($"'{path}': snapshot {i} has {extraLen} bytes of extra data (at most 1024 are allowed)");
            if (h.Version >= 3 && extraLen < 16) throw new ImageCorruptException($"'{path}': snapshot {i} lacks the 16 bytes of extra data version 3 requires");
            var total = 40L + extraLen + idLen + nameLen;
            if (pos + total > limit) throw Overrun(i);
            var rest = new byte[total - 40];
            ImageFile.ReadExactly(fh, pos + 40, rest, path, "snapshot table");
            var l1Off = BinaryPrimitives.ReadInt64BigEndian(fixedPart);
            var l1Size = BinaryPrimitives.ReadInt32BigEndian(fixedPart[8..]);
            if (l1Size < 0 || l1Size > 0x2000000 / 8 || (l1Size > 0 && (l1Off <= 0 || l1Off % h.ClusterSize != 0 || l1Off + l1Size * 8L > fileLength)))
                throw new ImageCorruptException($"'{path}': snapshot {i} has an invalid L1 table (offset 0x{l1Off:x}, {l1Size} entries)");
            var extra = rest.AsSpan(0, extraLen);
            var s = new Qcow2Snapshot
            {
                L1TableOffset = l1Off,
                L1Size = l1Size,
                DateSeconds = BinaryPrimitives.ReadUInt32BigEndian(fixedPart[16..]),
                DateNanoseconds = BinaryPrimitives.ReadUInt32BigEndian(fixedPart[20..]),
                VmClockNanoseconds = BinaryPrimitives.ReadUInt64BigEndian(fixedPart[24..]),
                VmStateSize = extraLen >= 8 ? BinaryPrimitives.ReadInt64BigEndian(extra) : BinaryPrimitives.ReadUInt32BigEndian(fixedPart[32..]),
                DiskSize = extraLen >= 16 ? BinaryPrimitives.ReadInt64BigEndian(extra[8..]) : h.Size,
                Icount = extraLen >= 24 ? BinaryPrimitives.ReadUInt64BigEndian(extra[16..]) : null,
                ExtraTail = extraLen > 24 ? extra[24..].ToArray() : [],
                Id = Encoding.UTF8.GetString(rest, extraLen, idLen),
                Name = Encoding.UTF8.GetString(rest, extraLen + idLen, nameLen),
            };
            if (!ids.Add(s.Id)) throw new ImageCorruptException($"'{path}': two snapshots share the id '{s.Id}'");
            list.Add(s);
            pos += (total + 7) & ~7L;
        }
        return list;

        ImageCorruptException Overrun(int i) =>
            new($"'{path}': the snapshot table overruns the end of the file at snapshot {i} of {h.SnapshotCount}; the image is truncated or corrupt");
    }

    internal static byte[] Serialize(IReadOnlyList<Qcow2Snapshot> list)
    {
        var buf = new byte[TableBytes(list)];
        var pos = 0;
        foreach (var s in list)
        {
            var b = buf.AsSpan(pos);
            var id = Encoding.UTF8.GetBytes(s.Id);
            var name = Encoding.UTF8.GetBytes(s.Name);
            var extra = s.ExtraBytes;
            BinaryPrimitives.WriteInt64BigEndian(b, s.L1TableOffset);
            BinaryPrimitives.WriteInt32BigEndian(b[8..], s.L1Size);
            BinaryPrimitives.WriteUInt16BigEndian(b[12..], (ushort)id.Length);
            BinaryPrimitives.WriteUInt16BigEndian(b[14..], (ushort)name.Length);
            BinaryPrimitives.WriteUInt32BigEndian(b[16..], s.DateSeconds);
            BinaryPrimitives.WriteUInt32BigEndian(b[20..], s.DateNanoseconds);
            BinaryPrimitives.WriteUInt64BigEndian(b[24..], s.VmClockNanoseconds);
            BinaryPrimitives.WriteUInt32BigEndian(b[32..], (uint)Math.Min(s.VmStateSize, uint.MaxValue));
            BinaryPrimitives.WriteInt32BigEndian(b[36..], extra);
            BinaryPrimitives.WriteInt64BigEndian(b[40..], s.VmStateSize);
            BinaryPrimitives.WriteInt64BigEndian(b[48..], s.DiskSize);
            var o = 56;
            if (s.Icount.HasValue) { BinaryPrimitives.WriteUInt64BigEndian(b[o..], s.Icount.Value); o += 8; }
            s.ExtraTail.CopyTo(b[o..]);
            o += s.ExtraTail.Length;
            id.CopyTo(b[o..]);
            name.CopyTo(b[(o + id.Length)..]);
            pos += s.EntryBytes;
        }
        return buf;
    }
}
