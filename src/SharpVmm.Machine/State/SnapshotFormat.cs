using System.Buffers.Binary;
using System.Security.Cryptography;
using SharpVmm.Core.State;

namespace SharpVmm.Machine.State;

/// <summary>
/// Layout of a snapshot file. Everything is 4 KiB-aligned so restore can map RAM straight from the file:
/// <code>
///   0          header page: "SVMSNAP1", u32 version, i32 payload length, payload, SHA-256(payload)
///              payload = accelerator, vCPUs, RAM size, devices (id, kind), creation time, tag,
///                        machine-state offset and length, RAM regions (guest address, size, file offset, pages stored)
///   4096       the machine-state record (MachineStateFormat: vCPUs, clock, devices), padded to a page
///   ...        each RAM region, byte for byte at its file offset; all-zero pages are holes (the file is sparse)
///   ...        (version 2) the page checksums: CRC-32C of every RAM page, region by region, u32 little-endian
/// </code>
/// A restore checks every page against its checksum, so a flipped bit in saved RAM is refused, naming the page.
/// </summary>
public static class SnapshotFormat
{
    public const int Version = 2;
    public const int PageSize = 4096;
    public const int HeaderSize = PageSize;
    public static ReadOnlySpan<byte> Magic => "SVMSNAP1"u8;
    private const int HashBytes = 32;

    public sealed record Region(ulong GuestBase, ulong Size, long FileOffset, long StoredPages);

    public sealed record Header
    {
        public required string Accelerator { get; init; }
        public required int Cpus { get; init; }
        public required ulong RamBytes { get; init; }
        public required IReadOnlyList<(string Id, string Kind)> Devices { get; init; }
        public required DateTime CreatedUtc { get; init; }
        public string Tag { get; init; } = "";
        public required long StateOffset { get; init; }
        public required long StateLength { get; init; }
        public required IReadOnlyList<Region> Regions { get; init; }
        /// <summary>File offset of the page checksums; 0 in version 1 files, which have none.</summary>
        public long ChecksumOffset { get; init; }

        public long PageCount
        {
            get
            {
                long n = 0;
                foreach (var r in Regions) n += (long)(r.Size / PageSize);
                return n;
            }
        }

        /// <summary>Bytes of the whole file (the end of the last region).</summary>
        public long FileLength
        {
            get
            {
                long end = StateOffset + StateLength;
                foreach (var r in Regions) end = Math.Max(end, r.FileOffset + (long)r.Size);
                if (ChecksumOffset != 0) end = Math.Max(end, ChecksumOffset + PageCount * 4);
                return end;
            }
        }
    }

    public static long AlignUp(long v) => (v + PageSize - 1) & ~(long)(PageSize - 1);

    public static byte[] Encode(Header h)
    {
        var w = new StateWriter(1024);
        w.WriteString(h.Accelerator);
        w.WriteI32(h.Cpus);
        w.WriteU64(h.RamBytes);
        w.WriteI32(h.Devices.Count);
        foreach (var (id, kind) in h.Devices) { w.WriteString(id); w.WriteString(kind); }
        w.WriteI64(h.CreatedUtc.Ticks);
        w.WriteString(h.Tag);
        w.WriteI64(h.StateOffset);
        w.WriteI64(h.StateLength);
        w.WriteI32(h.Regions.Count);
        foreach (var r in h.Regions) { w.WriteU64(r.GuestBase); w.WriteU64(r.Size); w.WriteI64(r.FileOffset); w.WriteI64(r.StoredPages); }
        w.WriteI64(h.ChecksumOffset);
        var payload = w.WrittenSpan;
        if (16 + payload.Length + HashBytes > HeaderSize)
            throw new StateFormatException($"the snapshot header needs {payload.Length} bytes, more than fits in its page (too many devices, or a very long tag)");
        var page = new byte[HeaderSize];
        Magic.CopyTo(page);
        BinaryPrimitives.WriteInt32LittleEndian(page.AsSpan(8), Version);
        BinaryPrimitives.WriteInt32LittleEndian(page.AsSpan(12), payload.Length);
        payload.CopyTo(page.AsSpan(16));
        SHA256.HashData(payload, page.AsSpan(16 + payload.Length, HashBytes));
        return page;
    }

    /// <summary>Parses and checks a header page; <paramref name="fileLength"/> is the file's actual size.</summary>
    public static Header Decode(ReadOnlySpan<byte> page, long fileLength, string path)
    {
        string where = $"snapshot '{path}'";
        if (page.Length < HeaderSize)
            throw new StateFormatException($"{where} is truncated: {page.Length} bytes, less than its {HeaderSize}-byte header");
        if (!page[..8].SequenceEqual(Magic))
            throw new StateFormatException($"{where} is not a SharpVmm snapshot (it does not start with \"SVMSNAP1\")");
        int version = BinaryPrimitives.ReadInt32LittleEndian(page[8..]);
        if (version is not (1 or Version))
            throw new StateFormatException($"{where} has format version {version}; this SharpVmm reads versions 1 and {Version}");
        int n = BinaryPrimitives.ReadInt32LittleEndian(page[12..]);
        // Compared without adding to n: a length near int.MaxValue would wrap the sum negative and pass.
        if (n < 0 || n > HeaderSize - 16 - HashBytes) throw new StateFormatException($"{where} has a corrupt header (payload length {n})");
        var payload = page.Slice(16, n);
        Span<byte> hash = stackalloc byte[HashBytes];
        SHA256.HashData(payload, hash);
        if (!hash.SequenceEqual(page.Slice(16 + n, HashBytes)))
            throw new StateFormatException($"{where} has a corrupt header: its checksum does not match");

        var r = new StateReader(payload.ToArray(), $"{where} header");
        string accel = r.ReadString(64, "accelerator");
        int cpus = r.ReadInt(1, 4096, "vCPU count");
        ulong ram = r.ReadU64("RAM size");
        int deviceCount = r.ReadInt(0, 1024, "device count");
        var devices = new List<(string, string)>(deviceCount);
        for (int i = 0; i < deviceCount; i++) devices.Add((r.ReadString(256, "device id"), r.ReadString(128, "device kind")));
        long created = r.ReadI64("creation time");
        if (created < DateTime.MinValue.Ticks || created > DateTime.MaxValue.Ticks) throw r.Error("creation time is out of range");
        string tag = r.ReadString(1024, "tag");
        long stateOffset = r.ReadI64("machine-state offset"), stateLength = r.ReadI64("machine-state length");
        int regionCount = r.ReadInt(1, 64, "RAM region count");
        var regions = new List<Region>(regionCount);
        ulong total = 0;
        for (int i = 0; i < regionCount; i++)
        {
            var reg = new Region(r.ReadU64("region address"), r.ReadU64("region size"), r.ReadI64("region file offset"), r.ReadI64("region stored pages"));
            if (reg.FileOffset < HeaderSize || (reg.FileOffset & (PageSize - 1)) != 0 || reg.Size == 0 || (reg.Size & (PageSize - 1)) != 0
                || reg.Size > long.MaxValue / 2 || reg.FileOffset > long.MaxValue / 2)
                throw r.Error($"RAM region {i} (0x{reg.GuestBase:x}+0x{reg.Size:x} at file offset {reg.FileOffset}) is not page-aligned");
            total += reg.Size;
            regions.Add(reg);
        }
        long checksums = version >= 2 ? r.ReadI64("page checksum offset") : 0;
        r.ExpectEnd();
        if (version >= 2 && (checksums < HeaderSize || (checksums & (PageSize - 1)) != 0))
            throw new StateFormatException($"{where} has a corrupt header: its page checksums are at offset {checksums}");
        if (total != ram) throw new StateFormatException($"{where} has a corrupt header: its RAM regions add up to {total} bytes, not {ram}");
        if (stateOffset < HeaderSize || stateLength <= 0 || stateOffset > fileLength || stateLength > fileLength - stateOffset)
            throw new StateFormatException($"{where} is truncated or corrupt: the machine state ({stateLength} bytes at {stateOffset}) lies beyond its {fileLength} bytes");
        var h = new Header
        {
            Accelerator = accel, Cpus = cpus, RamBytes = ram, Devices = devices, CreatedUtc = new DateTime(created, DateTimeKind.Utc),
            Tag = tag, StateOffset = stateOffset, StateLength = stateLength, Regions = regions, ChecksumOffset = checksums,
        };
        if (h.FileLength > fileLength)
            throw new StateFormatException($"{where} is truncated: it should be {h.FileLength} bytes long, it is {fileLength}");
        return h;
    }
}
