using System.Buffers.Binary;
using System.Text;
using static SharpVmm.Machine.Migration.MigrationProtocol;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// Writes the migration stream (see <see cref="MigrationProtocol"/>). Buffered: call <see cref="Flush"/> before
/// waiting for the peer. Not thread-safe; one migration owns one writer.
/// </summary>
public sealed class MigrationStreamWriter : IDisposable
{
    private readonly Stream _out;
    private readonly byte[] _small = new byte[64];
    private long _records;

    public MigrationStreamWriter(Stream output, int bufferSize = 1 << 20)
    {
        ArgumentNullException.ThrowIfNull(output);
        _out = new BufferedStream(output, bufferSize);
    }

    /// <summary>Bytes handed to the stream so far (header, records, data).</summary>
    public long BytesWritten { get; private set; }

    public void WriteHeader(MigrationHeader header)
    {
        var w = new ArrayBufferWriter();
        w.Bytes(Magic);
        w.U32(header.Version);
        w.U32((uint)header.VcpuCount);
        w.Str(header.Accelerator);
        w.U32((uint)header.Regions.Count);
        foreach (var (b, s) in header.Regions)
        {
            w.U64(b);
            w.U64(s);
        }
        w.U32((uint)header.DeviceIds.Count);
        foreach (string id in header.DeviceIds) w.Str(id);
        var bytes = w.Span;
        Emit(bytes);
        EmitCrc(Crc32C.Compute(bytes));
    }

    /// <summary>A run of whole pages starting at <paramref name="gpa"/>; <paramref name="data"/> must not change while this runs.</summary>
    public void WritePages(ulong gpa, ReadOnlySpan<byte> data)
    {
        if ((gpa & (PageSize - 1)) != 0) throw new ArgumentException($"page run at 0x{gpa:x} is not page aligned", nameof(gpa));
        if (data.IsEmpty || data.Length % PageSize != 0 || data.Length / PageSize > MaxRunPages)
            throw new ArgumentException($"a page run is 1 to {MaxRunPages} whole pages, not {data.Length} bytes", nameof(data));
        var head = _small.AsSpan(0, 13);
        head[0] = TagPages;
        BinaryPrimitives.WriteUInt64LittleEndian(head[1..], gpa);
        BinaryPrimitives.WriteUInt32LittleEndian(head[9..], (uint)(data.Length / PageSize));
        uint crc = Crc32C.Append(Crc32C.Compute(head), data);
        Emit(head);
        Emit(data);
        EmitCrc(crc);
        _records++;
    }

    public void WriteZeroPages(ulong gpa, int pages)
    {
        if ((gpa & (PageSize - 1)) != 0) throw new ArgumentException($"zero run at 0x{gpa:x} is not page aligned", nameof(gpa));
        ArgumentOutOfRangeException.ThrowIfLessThan(pages, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pages, MaxZeroRunPages);
        var head = _small.AsSpan(0, 13);
        head[0] = TagZeroPages;
        BinaryPrimitives.WriteUInt64LittleEndian(head[1..], gpa);
        BinaryPrimitives.WriteUInt32LittleEndian(head[9..], (uint)pages);
        Emit(head);
        EmitCrc(Crc32C.Compute(head));
        _records++;
    }

    public void WriteIterationEnd(int round)
    {
        var head = _small.AsSpan(0, 5);
        head[0] = TagIterationEnd;
        BinaryPrimitives.WriteUInt32LittleEndian(head[1..], (uint)round);
        Emit(head);
        EmitCrc(Crc32C.Compute(head));
        _records++;
    }

    public void WriteState(ReadOnlySpan<byte> state)
    {
        if (state.Length > MaxStateBytes)
            throw new MigrationException($"the machine state is {state.Length} bytes, more than the stream's limit of {MaxStateBytes}");
        var head = _small.AsSpan(0, 5);
        head[0] = TagState;
        BinaryPrimitives.WriteUInt32LittleEndian(head[1..], (uint)state.Length);
        uint crc = Crc32C.Append(Crc32C.Compute(head), state);
        Emit(head);
        Emit(state);
        EmitCrc(crc);
        _records++;
    }

    public void WriteEnd()
    {
        var head = _small.AsSpan(0, 9);
        head[0] = TagEnd;
        BinaryPrimitives.WriteUInt64LittleEndian(head[1..], (ulong)_records);
        Emit(head);
        EmitCrc(Crc32C.Compute(head));
    }

    public void Flush() => _out.Flush();

    private void Emit(ReadOnlySpan<byte> bytes)
    {
        _out.Write(bytes);
        BytesWritten += bytes.Length;
    }

    private void EmitCrc(uint crc)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, crc);
        Emit(b);
    }

    /// <summary>Flushes what is buffered if the connection still takes it; the caller owns and closes the stream.</summary>
    public void Dispose()
    {
        try { _out.Flush(); } catch (Exception ex) when (ex is IOException or ObjectDisposedException) { }
    }

    /// <summary>A growable little-endian byte builder for the header.</summary>
    private sealed class ArrayBufferWriter
    {
        private byte[] _buf = new byte[256];
        private int _len;

        public ReadOnlySpan<byte> Span => _buf.AsSpan(0, _len);

        private Span<byte> Take(int n)
        {
            if (_len + n > _buf.Length) Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + n));
            var s = _buf.AsSpan(_len, n);
            _len += n;
            return s;
        }

        public void Bytes(ReadOnlySpan<byte> b) => b.CopyTo(Take(b.Length));
        public void U32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), v);
        public void U64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), v);

        public void Str(string s)
        {
            byte[] b = Encoding.UTF8.GetBytes(s);
            if (b.Length > MaxStringBytes) throw new MigrationException($"'{s[..32]}...' is too long for the migration header");
            BinaryPrimitives.WriteUInt16LittleEndian(Take(2), (ushort)b.Length);
            Bytes(b);
        }
    }
}
