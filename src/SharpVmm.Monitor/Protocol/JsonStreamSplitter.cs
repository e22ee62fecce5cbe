using System.Buffers;

namespace SharpVmm.Monitor.Protocol;

/// <summary>One top-level JSON text cut from the stream, or the reason the bytes there could not be one.</summary>
public readonly record struct JsonChunk(byte[]? Text, string? Error);

/// <summary>
/// Cuts a byte stream into top-level JSON values as QEMU's streamer does: a value ends when its brackets balance,
/// so requests may span lines or share one. Only the structure is tracked here (strings, escapes, depth); the
/// value itself is parsed by System.Text.Json. Oversized or too-deep input is skipped to its end and reported
/// once, so a hostile client costs bounded memory and the stream stays in sync.
/// </summary>
public sealed class JsonStreamSplitter
{
    public const int MaxBytes = 1 << 20;
    public const int MaxDepth = 1024;

    private readonly ArrayBufferWriter<byte> _current = new();
    private int _depth;
    private bool _inString, _escape, _inScalar, _oversized;

    public void Feed(ReadOnlySpan<byte> data, List<JsonChunk> output)
    {
        for (int i = 0; i < data.Length; i++)
        {
            byte b = data[i];
            if (_inString)
            {
                Append(b);
                if (_escape) _escape = false;
                else if (b == (byte)'\\') _escape = true;
                else if (b == (byte)'"')
                {
                    _inString = false;
                    if (_depth == 0) Complete(output);
                }
                continue;
            }
            if (_inScalar)
            {
                if (!IsDelimiter(b))
                {
                    Append(b);
                    continue;
                }
                Complete(output); // then look at b afresh
            }
            switch (b)
            {
                case (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n':
                    if (_depth > 0) Append(b);
                    break;
                case (byte)'{' or (byte)'[':
                    _depth++;
                    if (_depth > MaxDepth) _oversized = true;
                    Append(b);
                    break;
                case (byte)'}' or (byte)']':
                    if (_depth == 0)
                    {
                        output.Add(new JsonChunk(null, "JSON parse error, expecting value"));
                        break;
                    }
                    _depth--;
                    Append(b);
                    if (_depth == 0) Complete(output);
                    break;
                case (byte)'"':
                    _inString = true;
                    Append(b);
                    break;
                default:
                    if (_depth == 0) _inScalar = true;
                    Append(b);
                    break;
            }
        }
    }

    private static bool IsDelimiter(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'
        or (byte)'{' or (byte)'}' or (byte)'[' or (byte)']' or (byte)'"' or (byte)',' or (byte)':';

    private void Append(byte b)
    {
        if (_oversized) return;
        if (_current.WrittenCount >= MaxBytes)
        {
            _oversized = true;
            return;
        }
        _current.GetSpan(1)[0] = b;
        _current.Advance(1);
    }

    private void Complete(List<JsonChunk> output)
    {
        output.Add(_oversized
            ? new JsonChunk(null, $"JSON parse error, request larger than {MaxBytes} bytes or nested deeper than {MaxDepth} levels")
            : new JsonChunk(_current.WrittenSpan.ToArray(), null));
        _current.Clear();
        _inScalar = false;
        _oversized = false;
    }
}
