using System.Buffers.Binary;
using System.Text;
using static SharpVmm.Machine.Migration.MigrationProtocol;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// Reads and checks the migration stream (see <see cref="MigrationProtocol"/>): every record's checksum and
/// lengths are verified before its contents are handed out, and a stream that ends early, carries an unknown tag or
/// a bad checksum raises a <see cref="MigrationException"/> that says where.
/// </summary>
public sealed class MigrationStreamReader
{
    private readonly Stream _in;
    private readonly byte[] _head = new byte[32];
    private byte[] _payload = new byte[MaxRunPages * PageSize];
    private int _payloadLength;
    private long _records;

    public MigrationStreamReader(Stream input, int bufferSize = 1 << 20)
    {
        ArgumentNullException.ThrowIfNull(input);
        _in = new BufferedStream(input, bufferSize);
    }

    /// <summary>Bytes consumed so far.</summary>
    public long Offset { get; private set; }

    /// <summary>The current record's first guest-physical address (Pages, ZeroPages).</summary>
    public ulong Gpa { get; private set; }
    /// <summary>The current record's page count (Pages, ZeroPages).</summary>
    public int PageCount { get; private set; }
    /// <summary>The current record's round number (IterationEnd).</summary>
    public int Round { get; private set; }
    /// <summary>The current record's bytes (Pages: the page data; State: the machine state), valid until the next Read.</summary>
    public ReadOnlySpan<byte> Payload => _payload.AsSpan(0, _payloadLength);

    public MigrationHeader ReadHeader()
    {
        var crc = 0u;
        Span<byte> magic = stackalloc byte[8];
        Fill(magic, "the stream header");
        if (!magic.SequenceEqual(Magic))
            throw new MigrationException($"the peer did not send a SharpVmm migration stream (it began with {Convert.ToHexString(magic)}): is the source a SharpVmm 'migrate'?");
        crc = Crc32C.Append(crc, magic);
        uint version = U32(ref crc, "the stream header");
        if (version != MigrationProtocol.Version)
            throw new MigrationException($"the source speaks migration stream version {version}, this SharpVmm speaks version {MigrationProtocol.Version}: migrate between the same SharpVmm versions");
        uint vcpus = U32(ref crc, "the stream header");
        string accel = Str(ref crc);
        uint regionCount = U32(ref crc, "the stream header");
        if (regionCount is 0 or > MaxRegions) throw Corrupt($"the header names {regionCount} RAM regions (1 to {MaxRegions} allowed)");
        var regions = new List<(ulong, ulong)>((int)regionCount);
        for (int i = 0; i < regionCount; i++) regions.Add((U64(ref crc), U64(ref crc)));
        uint deviceCount = U32(ref crc, "the stream header");
        if (deviceCount > MaxDevices) throw Corrupt($"the header names {deviceCount} devices (at most {MaxDevices})");
        var ids = new List<string>((int)deviceCount);
        for (int i = 0; i < deviceCount; i++) ids.Add(Str(ref crc));
        CheckCrc(crc, "the stream header");
        if (vcpus is 0 or > 4096) throw Corrupt($"the header says the VM has {vcpus} vCPUs");
        return new MigrationHeader(version, (int)vcpus, accel, regions, ids);
    }

    /// <summary>Reads the next record; its fields are then in <see cref="Gpa"/>, <see cref="PageCount"/>, <see cref="Round"/>, <see cref="Payload"/>.</summary>
    public MigrationRecordKind Read()
    {
        long at = Offset;
        _payloadLength = 0;
        Fill(_head.AsSpan(0, 1), "a record");
        byte tag = _head[0];
        uint crc = Crc32C.Compute(_head.AsSpan(0, 1));
        switch (tag)
        {
            case TagPages:
            {
                ulong gpa = U64(ref crc, "a page record");
                uint pages = U32(ref crc, "a page record");
                CheckRun(gpa, pages, MaxRunPages, at);
                _payloadLength = (int)pages * PageSize;
                Fill(_payload.AsSpan(0, _payloadLength), "the data of a page record");
                crc = Crc32C.Append(crc, Payload);
                CheckCrc(crc, $"the page record for 0x{gpa:x} at stream offset {at}");
                Gpa = gpa;
                PageCount = (int)pages;
                _records++;
                return MigrationRecordKind.Pages;
            }
            case TagZeroPages:
            {
                ulong gpa = U64(ref crc, "a zero-page record");
                uint pages = U32(ref crc, "a zero-page record");
                CheckRun(gpa, pages, MaxZeroRunPages, at);
                CheckCrc(crc, $"the zero-page record for 0x{gpa:x} at stream offset {at}");
                Gpa = gpa;
                PageCount = (int)pages;
                _records++;
                return MigrationRecordKind.ZeroPages;
            }
            case TagIterationEnd:
            {
                uint round = U32(ref crc, "an iteration marker");
                CheckCrc(crc, $"the iteration marker at stream offset {at}");
                if (round > int.MaxValue) throw Corrupt($"iteration marker with round {round} at stream offset {at}");
                Round = (int)round;
                _records++;
                return MigrationRecordKind.IterationEnd;
            }
            case TagState:
            {
                uint length = U32(ref crc, "the machine-state record");
                if (length > MaxStateBytes) throw Corrupt($"the machine-state record claims {length} bytes (at most {MaxStateBytes})");
                if (_payload.Length < length) _payload = new byte[length];
                _payloadLength = (int)length;
                Fill(_payload.AsSpan(0, _payloadLength), "the machine-state record");
                crc = Crc32C.Append(crc, Payload);
                CheckCrc(crc, $"the machine-state record at stream offset {at}");
                _records++;
                return MigrationRecordKind.State;
            }
            case TagEnd:
            {
                ulong count = U64(ref crc, "the end marker");
                CheckCrc(crc, $"the end marker at stream offset {at}");
                if (count != (ulong)_records)
                    throw Corrupt($"the end marker counts {count} records but {_records} arrived");
                return MigrationRecordKind.End;
            }
            default:
                throw Corrupt($"unknown record type 0x{tag:x2} at stream offset {at}");
        }
    }

    private static void CheckRun(ulong gpa, uint pages, int max, long at)
    {
        if ((gpa & (PageSize - 1)) != 0) throw Corrupt($"a page run at 0x{gpa:x} (stream offset {at}) is not page aligned");
        if (pages == 0 || pages > max) throw Corrupt($"a page run at 0x{gpa:x} (stream offset {at}) has {pages} pages (1 to {max} allowed)");
        if (gpa + (ulong)pages * PageSize < gpa) throw Corrupt($"a page run at 0x{gpa:x} (stream offset {at}) wraps the address space");
    }

    private void CheckCrc(uint expected, string what)
    {
        Span<byte> b = stackalloc byte[4];
        Fill(b, what);
        uint got = BinaryPrimitives.ReadUInt32LittleEndian(b);
        if (got != expected) throw Corrupt($"checksum mismatch in {what} (sent 0x{got:x8}, computed 0x{expected:x8})");
    }

    private uint U32(ref uint crc, string what)
    {
        var b = _head.AsSpan(0, 4);
        Fill(b, what);
        crc = Crc32C.Append(crc, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private ulong U64(ref uint crc, string what = "the stream header")
    {
        var b = _head.AsSpan(0, 8);
        Fill(b, what);
        crc = Crc32C.Append(crc, b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private string Str(ref uint crc)
    {
        var lb = _head.AsSpan(0, 2);
        Fill(lb, "the stream header");
        crc = Crc32C.Append(crc, lb);
        int len = BinaryPrimitives.ReadUInt16LittleEndian(lb);
        if (len > MaxStringBytes) throw Corrupt($"a {len}-byte name in the header (at most {MaxStringBytes})");
        var b = new byte[len];
        Fill(b, "the stream header");
        crc = Crc32C.Append(crc, b);
        return Encoding.UTF8.GetString(b);
    }

    private void Fill(Span<byte> into, string what)
    {
        int done = 0;
        while (done < into.Length)
        {
            int n;
            try
            {
                n = _in.Read(into[done..]);
            }
            catch (IOException ex)
            {
                throw new MigrationException($"the migration connection failed inside {what} after {Offset + done} bytes: {ex.Message}", ex);
            }
            if (n == 0)
                throw new MigrationException($"the migration stream is truncated: it ended inside {what} after {Offset + done} bytes (the source stopped or the connection dropped)");
            done += n;
        }
        Offset += into.Length;
    }

    private static MigrationException Corrupt(string what) => new($"the migration stream is corrupt: {what}; refusing it");
}
