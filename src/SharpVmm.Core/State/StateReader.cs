using System.Buffers.Binary;
using System.Text;

namespace SharpVmm.Core.State;

/// <summary>
/// Reads what <see cref="StateWriter"/> wrote. Every read is bounds-checked: running past the end, a length that does
/// not fit, a boolean that is neither 0 nor 1, a section with another tag or unread trailing bytes all throw
/// <see cref="StateFormatException"/> naming where (<see cref="Context"/>) it happened, never an out-of-range access.
/// </summary>
public sealed class StateReader
{
    private readonly ReadOnlyMemory<byte> _data;
    private int _position;

    /// <param name="context">Where these bytes come from, for messages ("snapshot header", "section 'com1'").</param>
    public StateReader(ReadOnlyMemory<byte> data, string context = "saved state")
    {
        _data = data;
        Context = context;
    }

    public string Context { get; }
    public int Position => _position;
    public int Length => _data.Length;
    public int Remaining => _data.Length - _position;
    public bool AtEnd => _position == _data.Length;

    private ReadOnlySpan<byte> Take(int n, string what)
    {
        if (n < 0 || n > Remaining)
            throw Error($"truncated: {what} needs {n} bytes at offset {_position}, only {Remaining} left");
        var span = _data.Span.Slice(_position, n);
        _position += n;
        return span;
    }

    public byte ReadU8(string what = "a byte") => Take(1, what)[0];

    public bool ReadBool(string what = "a flag")
    {
        byte b = Take(1, what)[0];
        return b switch
        {
            0 => false,
            1 => true,
            _ => throw Error($"{what} at offset {_position - 1} is {b}, not 0 or 1"),
        };
    }

    public ushort ReadU16(string what = "a 16-bit value") => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public uint ReadU32(string what = "a 32-bit value") => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public int ReadI32(string what = "a 32-bit value") => BinaryPrimitives.ReadInt32LittleEndian(Take(4, what));
    public ulong ReadU64(string what = "a 64-bit value") => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
    public long ReadI64(string what = "a 64-bit value") => BinaryPrimitives.ReadInt64LittleEndian(Take(8, what));

    /// <summary>A 32-bit integer that must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int ReadInt(int min, int max, string what)
    {
        int v = ReadI32(what);
        if (v < min || v > max) throw Error($"{what} is {v}, outside {min}..{max}");
        return v;
    }

    /// <summary>Exactly <paramref name="destination"/>.Length bytes, written with <see cref="StateWriter.WriteRaw"/>.</summary>
    public void ReadRaw(Span<byte> destination, string what = "raw bytes") => Take(destination.Length, what).CopyTo(destination);

    public ReadOnlySpan<byte> ReadRawSpan(int length, string what = "raw bytes") => Take(length, what);

    /// <summary>Everything not read yet, consumed (a nested payload handed to another reader).</summary>
    public ReadOnlyMemory<byte> ReadRawMemory()
    {
        var rest = _data[_position..];
        _position = _data.Length;
        return rest;
    }

    /// <summary>Length-prefixed bytes, at most <paramref name="maxLength"/> of them.</summary>
    public byte[] ReadBytes(int maxLength, string what = "a byte string")
    {
        int n = ReadLength(maxLength, what);
        return Take(n, what).ToArray();
    }

    /// <summary>Length-prefixed bytes that must be exactly <paramref name="length"/> long (a register page, a chip's state).</summary>
    public void ReadBytesExactly(Span<byte> destination, string what)
    {
        int n = ReadI32(what + " length");
        if (n != destination.Length) throw Error($"{what} is {n} bytes, expected {destination.Length}");
        Take(n, what).CopyTo(destination);
    }

    public string ReadString(int maxLength = 4096, string what = "a string")
    {
        int n = ReadLength(maxLength, what);
        try
        {
            return new UTF8Encoding(false, true).GetString(Take(n, what));
        }
        catch (DecoderFallbackException)
        {
            throw Error($"{what} is not valid UTF-8");
        }
    }

    public uint[] ReadU32Array(int maxCount, string what = "a list")
    {
        int n = ReadLength(maxCount, what);
        if ((long)n * 4 > Remaining) throw Error($"truncated: {what} of {n} entries does not fit in the {Remaining} bytes left");
        var a = new uint[n];
        for (int i = 0; i < n; i++) a[i] = ReadU32(what);
        return a;
    }

    public ulong[] ReadU64Array(int maxCount, string what = "a list")
    {
        int n = ReadLength(maxCount, what);
        if ((long)n * 8 > Remaining) throw Error($"truncated: {what} of {n} entries does not fit in the {Remaining} bytes left");
        var a = new ulong[n];
        for (int i = 0; i < n; i++) a[i] = ReadU64(what);
        return a;
    }

    /// <summary>A fixed-count array written with <see cref="StateWriter.WriteU32Array"/>; the count must match.</summary>
    public void ReadU32ArrayExactly(Span<uint> destination, string what)
    {
        int n = ReadI32(what + " count");
        if (n != destination.Length) throw Error($"{what} has {n} entries, expected {destination.Length}");
        for (int i = 0; i < n; i++) destination[i] = ReadU32(what);
    }

    private int ReadLength(int max, string what)
    {
        int n = ReadI32(what + " length");
        if (n < 0 || n > max) throw Error($"{what} claims {n} entries/bytes; at most {max} are allowed");
        if (n > Remaining) throw Error($"truncated: {what} claims {n} bytes at offset {_position}, only {Remaining} left");
        return n;
    }

    /// <summary>The tag of the next section without consuming it, or null at the end.</summary>
    public string? PeekSectionTag()
    {
        if (AtEnd) return null;
        int saved = _position;
        try { return ReadString(256, "a section tag"); }
        finally { _position = saved; }
    }

    /// <summary>Reads a section written by <see cref="StateWriter.Section"/> and returns a reader over its body only.</summary>
    public StateReader ReadSection(string expectedTag)
    {
        var (tag, body) = ReadAnySection();
        if (tag != expectedTag) throw Error($"expected section '{expectedTag}', found '{tag}'");
        return body;
    }

    /// <summary>Reads the next section whatever its tag.</summary>
    public (string Tag, StateReader Body) ReadAnySection()
    {
        string tag = ReadString(256, "a section tag");
        int n = ReadI32($"section '{tag}' length");
        if (n < 0) throw Error($"section '{tag}' has a negative length {n}");
        if (n > Remaining) throw Error($"truncated: section '{tag}' claims {n} bytes at offset {_position}, only {Remaining} left");
        var body = new StateReader(_data.Slice(_position, n), $"{Context}, section '{tag}'");
        _position += n;
        return (tag, body);
    }

    /// <summary>Throws unless every byte was read: trailing bytes mean the writer and reader disagree on the layout.</summary>
    public void ExpectEnd()
    {
        if (!AtEnd) throw Error($"{Remaining} unexpected bytes at offset {_position} (written by a different layout?)");
    }

    public StateFormatException Error(string message) => new($"{Context}: {message}");
}
