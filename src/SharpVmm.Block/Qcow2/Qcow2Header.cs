using System.Buffers.Binary;
using System.Text;

namespace SharpVmm.Block.Qcow2;

/// <summary>The qcow2 header and its extensions (qcow2 spec, "Header" and "Header extensions"), big-endian on disk.</summary>
internal sealed class Qcow2Header
{
    public const uint Magic = 0x514649fb;
    public const int V2Length = 72;
    public const int V3Length = 104;
    public const int V3LengthWithCompression = 112;

    public const uint ExtEnd = 0;
    public const uint ExtBackingFormat = 0xe2792aca;
    public const uint ExtFeatureNames = 0x6803f857;
    public const uint ExtBitmaps = 0x23852875;
    public const uint ExtEncryption = 0x0537be77;
    public const uint ExtDataFile = 0x44415441;

    public const ulong IncompatDirty = 1, IncompatCorrupt = 2, IncompatDataFile = 4, IncompatCompression = 8, IncompatExtL2 = 16;
    public const ulong KnownIncompat = 31;
    public const ulong CompatLazyRefcounts = 1;
    public const ulong AutoclearBitmaps = 1, AutoclearRawData = 2;

    public int Version;
    public long BackingFileOffset;
    public int BackingFileSize;
    public int ClusterBits;
    public long Size;
    public int CryptMethod;
    public int L1Size;
    public long L1TableOffset;
    public long RefcountTableOffset;
    public int RefcountTableClusters;
    public int SnapshotCount;
    public long SnapshotsOffset;
    public ulong Incompatible;
    public ulong Compatible;
    public ulong Autoclear;
    public int RefcountOrder = 4;
    public int HeaderLength;
    public byte CompressionType;
    public string? BackingFile;
    public string? BackingFormat;
    /// <summary>Feature names from the image's own table, by (type, bit): used to name unknown bits in errors.</summary>
    public readonly Dictionary<(int Type, int Bit), string> FeatureNames = [];
    /// <summary>Extensions we do not interpret, kept verbatim so rewriting the header preserves them.</summary>
    public readonly List<(uint Type, byte[] Data)> OtherExtensions = [];

    public int ClusterSize => 1 << ClusterBits;
    public bool ExtendedL2 => (Incompatible & IncompatExtL2) != 0;
    public bool LazyRefcounts => (Compatible & CompatLazyRefcounts) != 0;
    public bool IsZstd => CompressionType == 1;

    /// <summary>Parses and validates the header from the first bytes of the file.</summary>
    public static Qcow2Header Parse(ReadOnlySpan<byte> b, long fileLength, string path)
    {
        string Err(string what) => $"'{path}' is not a valid qcow2 image: {what}";
        if (b.Length < V2Length) throw new ImageCorruptException(Err($"the file is {b.Length} bytes, shorter than a qcow2 header"));
        if (BinaryPrimitives.ReadUInt32BigEndian(b) != Magic) throw new BlockImageException(Err("bad magic"));
        var h = new Qcow2Header
        {
            Version = BinaryPrimitives.ReadInt32BigEndian(b[4..]),
            BackingFileOffset = BinaryPrimitives.ReadInt64BigEndian(b[8..]),
            BackingFileSize = BinaryPrimitives.ReadInt32BigEndian(b[16..]),
            ClusterBits = BinaryPrimitives.ReadInt32BigEndian(b[20..]),
            Size = BinaryPrimitives.ReadInt64BigEndian(b[24..]),
            CryptMethod = BinaryPrimitives.ReadInt32BigEndian(b[32..]),
            L1Size = BinaryPrimitives.ReadInt32BigEndian(b[36..]),
            L1TableOffset = BinaryPrimitives.ReadInt64BigEndian(b[40..]),
            RefcountTableOffset = BinaryPrimitives.ReadInt64BigEndian(b[48..]),
            RefcountTableClusters = BinaryPrimitives.ReadInt32BigEndian(b[56..]),
            SnapshotCount = BinaryPrimitives.ReadInt32BigEndian(b[60..]),
            SnapshotsOffset = BinaryPrimitives.ReadInt64BigEndian(b[64..]),
        };
        if (h.Version is not (2 or 3))
            throw new BlockImageException(Err($"qcow2 version {h.Version} is not supported (only 2 and 3)"));
        if (h.ClusterBits is < 9 or > 21)
            throw new ImageCorruptException(Err($"cluster_bits {h.ClusterBits} is outside 9..21"));
        h.HeaderLength = V2Length;
        if (h.Version == 3)
        {
            if (b.Length < V3Length) throw new ImageCorruptException(Err("the version 3 header is truncated"));
            h.Incompatible = BinaryPrimitives.ReadUInt64BigEndian(b[72..]);
            h.Compatible = BinaryPrimitives.ReadUInt64BigEndian(b[80..]);
            h.Autoclear = BinaryPrimitives.ReadUInt64BigEndian(b[88..]);
            h.RefcountOrder = BinaryPrimitives.ReadInt32BigEndian(b[96..]);
            h.HeaderLength = BinaryPrimitives.ReadInt32BigEndian(b[100..]);
            if (h.HeaderLength < V3Length || h.HeaderLength % 8 != 0 || h.HeaderLength > h.ClusterSize || h.HeaderLength > b.Length)
                throw new ImageCorruptException(Err($"header_length {h.HeaderLength} is invalid"));
            if (h.HeaderLength > 104) h.CompressionType = b[104];
        }
        if (h.RefcountOrder is < 0 or > 6) throw new ImageCorruptException(Err($"refcount_order {h.RefcountOrder} is outside 0..6"));
        if (h.Size < 0) throw new ImageCorruptException(Err("the virtual size is negative"));
        if (h.CryptMethod != 0)
            throw new BlockImageException($"'{path}' is encrypted (crypt_method {h.CryptMethod}); encrypted qcow2 images are not supported, decrypt it with qemu-img convert first");
        h.ParseExtensions(b, path);
        if (h.BackingFileOffset != 0)
        {
            if (h.BackingFileSize is <= 0 or > 1023 || h.BackingFileOffset < h.HeaderLength || h.BackingFileOffset + h.BackingFileSize > Math.Min(h.ClusterSize, b.Length))
                throw new ImageCorruptException(Err($"the backing file name (offset {h.BackingFileOffset}, {h.BackingFileSize} bytes) is not inside the header cluster"));
            h.BackingFile = Encoding.UTF8.GetString(b.Slice((int)h.BackingFileOffset, h.BackingFileSize));
        }
        var unknown = h.Incompatible & ~KnownIncompat;
        if (unknown != 0)
        {
            var names = new StringBuilder();
            for (var bit = 0; bit < 64; bit++)
                if ((unknown & (1UL << bit)) != 0)
                    names.Append(names.Length > 0 ? ", " : "").Append(h.FeatureNames.TryGetValue((0, bit), out var n) ? $"'{n}' (bit {bit})" : $"bit {bit}");
            throw new BlockImageException($"'{path}' uses incompatible qcow2 features this program does not know: {names}; it cannot be opened safely");
        }
        if ((h.Incompatible & IncompatDataFile) != 0)
            throw new BlockImageException($"'{path}' keeps its data in an external data file; such qcow2 images are not supported");
        if ((h.Incompatible & IncompatCompression) != 0 && h.CompressionType is not (0 or 1))
            throw new BlockImageException($"'{path}' uses unknown compression type {h.CompressionType}");
        if ((h.Incompatible & IncompatCompression) == 0 && h.CompressionType != 0)
            throw new ImageCorruptException(Err($"compression type {h.CompressionType} without the compression-type incompatible bit"));
        if (h.Version == 2 && (h.RefcountOrder != 4))
            throw new ImageCorruptException(Err("version 2 images must use 16-bit refcounts"));
        h.Validate(fileLength, path);
        return h;
    }

    private void ParseExtensions(ReadOnlySpan<byte> b, string path)
    {
        var pos = HeaderLength;
        var end = BackingFileOffset > 0 ? (int)Math.Min(BackingFileOffset, b.Length) : Math.Min(ClusterSize, b.Length);
        while (pos + 8 <= end)
        {
            var type = BinaryPrimitives.ReadUInt32BigEndian(b[pos..]);
            var len = BinaryPrimitives.ReadUInt32BigEndian(b[(pos + 4)..]);
            pos += 8;
            if (type == ExtEnd) return;
            if (len > (uint)(end - pos))
                throw new ImageCorruptException($"'{path}': header extension 0x{type:x8} of {len} bytes overruns the header cluster");
            var data = b.Slice(pos, (int)len);
            switch (type)
            {
                case ExtBackingFormat:
                    BackingFormat = Encoding.UTF8.GetString(data);
                    break;
                case ExtFeatureNames:
                    for (var i = 0; i + 48 <= data.Length; i += 48)
                    {
                        var nameBytes = data.Slice(i + 2, 46);
                        var z = nameBytes.IndexOf((byte)0);
                        FeatureNames[(data[i], data[i + 1])] = Encoding.UTF8.GetString(z >= 0 ? nameBytes[..z] : nameBytes);
                    }
                    break;
                case ExtEncryption:
                    throw new BlockImageException($"'{path}' has an encryption header; encrypted qcow2 images are not supported");
                default:
                    OtherExtensions.Add((type, data.ToArray()));
                    break;
            }
            pos += (int)((len + 7) & ~7u);
        }
    }

    private void Validate(long fileLength, string path)
    {
        var cs = ClusterSize;
        string Err(string what) => $"'{path}' is corrupt: {what}";
        if (L1Size < 0 || L1Size > 0x2000000 / 8)
            throw new ImageCorruptException(Err($"L1 table size {L1Size} entries exceeds the 32 MiB limit"));
        var l2Bits = ClusterBits - (ExtendedL2 ? 4 : 3);
        var needed = (Size + ((long)cs << l2Bits) - 1) >> (ClusterBits + l2Bits);
        if (needed > L1Size)
            throw new ImageCorruptException(Err($"the L1 table ({L1Size} entries) is too small for a virtual size of {Size} bytes"));
        if (Size > (1L << 55))
            throw new ImageCorruptException(Err($"virtual size {Size} is too large"));
        CheckTable(L1TableOffset, (long)L1Size * 8, "L1 table", L1Size > 0);
        if (RefcountTableClusters <= 0 || RefcountTableClusters > (8 << 20) / cs + 1)
            throw new ImageCorruptException(Err($"refcount table size of {RefcountTableClusters} clusters is invalid"));
        CheckTable(RefcountTableOffset, (long)RefcountTableClusters * cs, "refcount table", true);
        if (SnapshotCount < 0 || SnapshotCount > 65536)
            throw new ImageCorruptException(Err($"snapshot count {SnapshotCount} is invalid"));
        if (SnapshotCount > 0) CheckTable(SnapshotsOffset, SnapshotCount * 40L, "snapshot table", true);

        void CheckTable(long offset, long bytes, string what, bool required)
        {
            if (!required) return;
            if (offset <= 0 || offset % cs != 0)
                throw new ImageCorruptException(Err($"the {what} offset 0x{offset:x} is not a cluster-aligned offset after the header"));
            if (offset > fileLength || bytes > fileLength - offset)
                throw new ImageCorruptException(Err($"the {what} at 0x{offset:x} ({bytes} bytes) extends past the end of the file ({fileLength} bytes)"));
        }
    }

    /// <summary>Header plus extensions plus backing name, as they go into cluster 0.</summary>
    public byte[] Serialize()
    {
        var b = new List<byte>(512);
        var fixedLen = Version == 2 ? V2Length : V3LengthWithCompression;
        HeaderLength = fixedLen;
        var hdr = new byte[fixedLen];
        BinaryPrimitives.WriteUInt32BigEndian(hdr, Magic);
        BinaryPrimitives.WriteInt32BigEndian(hdr.AsSpan(4), Version);
        BinaryPrimitives.WriteInt32BigEndian(hdr.AsSpan(20), ClusterBits);
        BinaryPrimitives.WriteInt64BigEndian(hdr.AsSpan(24), Size);
        BinaryPrimitives.WriteInt32BigEndian(hdr.AsSpan(32), CryptMethod);
        BinaryPrimitives.WriteInt32BigEndian(hdr.AsSpan(36), L1Size);
        BinaryPrimitives.WriteInt64BigEndian(hdr.AsSpan(40), L1TableOffset);
        BinaryPrimitives.WriteInt64BigEndian(hdr.AsSpan(48), RefcountTableOffset);
        BinaryPrimitives.WriteInt32BigEndian(hdr.AsSpan(56), RefcountTableClusters);
        BinaryPrimitives.WriteInt32BigEndian(hdr.AsSpan(60), SnapshotCount);
        BinaryPrimitives.WriteInt64BigEndian(hdr.AsSpan(64), SnapshotsOffset);
        if (Version == 3)
        {
            BinaryPrimitives.WriteUInt64BigEndian(hdr.AsSpan(72), Incompatible);
            BinaryPrimitives.WriteUInt64BigEndian(hdr.AsSpan(80), Compatible);
            BinaryPrimitives.WriteUInt64BigEndian(hdr.AsSpan(88), Autoclear);
            BinaryPrimitives.WriteInt32BigEndian(hdr.AsSpan(96), RefcountOrder);
            BinaryPrimitives.WriteInt32BigEndian(hdr.AsSpan(100), HeaderLength);
            hdr[104] = CompressionType;
        }
        b.AddRange(hdr);
        void Ext(uint type, ReadOnlySpan<byte> data)
        {
            Span<byte> t = stackalloc byte[8];
            BinaryPrimitives.WriteUInt32BigEndian(t, type);
            BinaryPrimitives.WriteUInt32BigEndian(t[4..], (uint)data.Length);
            b.AddRange(t.ToArray());
            b.AddRange(data.ToArray());
            for (var i = data.Length; i % 8 != 0; i++) b.Add(0);
        }
        if (BackingFormat != null) Ext(ExtBackingFormat, Encoding.UTF8.GetBytes(BackingFormat));
        foreach (var (type, data) in OtherExtensions) Ext(type, data);
        var backing = BackingFile != null ? Encoding.UTF8.GetBytes(BackingFile) : [];
        if (Version == 3)
        {
            // Only when it fits: the feature table is advisory, the cluster may be as small as 512 bytes.
            var table = FeatureTable();
            if (b.Count + 8 + table.Length + 8 + backing.Length <= ClusterSize) Ext(ExtFeatureNames, table);
        }
        Ext(ExtEnd, []);
        if (backing.Length > 0)
        {
            BackingFileOffset = b.Count;
            BackingFileSize = backing.Length;
            b.AddRange(backing);
        }
        else
        {
            BackingFileOffset = 0;
            BackingFileSize = 0;
        }
        var result = b.ToArray();
        BinaryPrimitives.WriteInt64BigEndian(result.AsSpan(8), BackingFileOffset);
        BinaryPrimitives.WriteInt32BigEndian(result.AsSpan(16), BackingFileSize);
        if (result.Length > ClusterSize)
            throw new BlockImageException($"the qcow2 header ({result.Length} bytes with the backing file name) does not fit in one {ClusterSize}-byte cluster; use a larger cluster size or a shorter backing file name");
        return result;
    }

    private static byte[] FeatureTable()
    {
        (int Type, int Bit, string Name)[] names =
        [
            (0, 0, "dirty bit"), (0, 1, "corrupt bit"), (0, 2, "external data file"), (0, 3, "compression type"),
            (0, 4, "extended L2 entries"), (1, 0, "lazy refcounts"), (2, 0, "bitmaps"), (2, 1, "raw external data"),
        ];
        var t = new byte[names.Length * 48];
        for (var i = 0; i < names.Length; i++)
        {
            t[i * 48] = (byte)names[i].Type;
            t[i * 48 + 1] = (byte)names[i].Bit;
            Encoding.ASCII.GetBytes(names[i].Name, t.AsSpan(i * 48 + 2));
        }
        return t;
    }
}
