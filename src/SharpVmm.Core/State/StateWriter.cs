using System.Buffers.Binary;
using System.Text;

namespace SharpVmm.Core.State;

/// <summary>
/// Builds saved state in memory: little-endian integers, length-prefixed byte strings and UTF-8 strings, and
/// sections (a tag and a 32-bit length before their contents) that readers can check or skip. Device state is small,
/// so it is assembled in a buffer and written to its stream in one piece.
/// </summary>
public sealed class StateWriter
{
    private byte[] _buffer;
    private int _length;

    public StateWriter(int initialCapacity = 256) => _buffer = new byte[Math.Max(16, initialCapacity)];

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);

    public byte[] ToArray() => WrittenSpan.ToArray();

    public void Clear() => _length = 0;

    private Span<byte> Grab(int n)
    {
        if (_buffer.Length - _length < n)
        {
            long wanted = Math.Max((long)_buffer.Length * 2, (long)_length + n);
            if (wanted > Array.MaxLength) throw new StateFormatException($"saved state would exceed {Array.MaxLength} bytes");
            Array.Resize(ref _buffer, (int)wanted);
        }
        var span = _buffer.AsSpan(_length, n);
        _length += n;
        return span;
    }

    public void WriteU8(byte value) => Grab(1)[0] = value;
    public void WriteBool(bool value) => WriteU8(value ? (byte)1 : (byte)0);
    public void WriteU16(ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(Grab(2), value);
    public void WriteU32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Grab(4), value);
    public void WriteI32(int value) => BinaryPrimitives.WriteInt32LittleEndian(Grab(4), value);
    public void WriteU64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Grab(8), value);
    public void WriteI64(long value) => BinaryPrimitives.WriteInt64LittleEndian(Grab(8), value);

    /// <summary>Bytes as they are, no length: the reader must know how many (fixed-size registers, pages).</summary>
    public void WriteRaw(ReadOnlySpan<byte> data) => data.CopyTo(Grab(data.Length));

    /// <summary>A 32-bit length, then the bytes.</summary>
    public void WriteBytes(ReadOnlySpan<byte> data)
    {
        WriteI32(data.Length);
        WriteRaw(data);
    }

    /// <summary>UTF-8 with a 32-bit byte length.</summary>
    public void WriteString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        int n = Encoding.UTF8.GetByteCount(value);
        WriteI32(n);
        Encoding.UTF8.GetBytes(value, Grab(n));
    }

    public void WriteU32Array(ReadOnlySpan<uint> values)
    {
        WriteI32(values.Length);
        foreach (uint v in values) WriteU32(v);
    }

    public void WriteU64Array(ReadOnlySpan<ulong> values)
    {
        WriteI32(values.Length);
        foreach (ulong v in values) WriteU64(v);
    }

    /// <summary>
    /// Starts a section: its tag, then a length filled in when the returned scope is disposed.
    /// <c>using (w.Section("com1")) { ... }</c>; read back with <see cref="StateReader.ReadSection"/>.
    /// </summary>
    public SectionScope Section(string tag)
    {
        WriteString(tag);
        int at = _length;
        WriteI32(0);
        return new SectionScope(this, at);
    }

    /// <summary>Writes a whole section whose body is already built.</summary>
    public void WriteSection(string tag, ReadOnlySpan<byte> body)
    {
        WriteString(tag);
        WriteBytes(body);
    }

    private void EndSection(int lengthAt)
    {
        int bodyLength = _length - lengthAt - 4;
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(lengthAt, 4), bodyLength);
    }

    public readonly struct SectionScope : IDisposable
    {
        private readonly StateWriter _writer;
        private readonly int _lengthAt;

        internal SectionScope(StateWriter writer, int lengthAt)
        {
            _writer = writer;
            _lengthAt = lengthAt;
        }

        public void Dispose() => _writer?.EndSection(_lengthAt);
    }
}
