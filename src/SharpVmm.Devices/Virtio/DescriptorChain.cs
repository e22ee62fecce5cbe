using SharpVmm.Memory;

namespace SharpVmm.Devices.Virtio;

/// <summary>
/// One request popped from a <see cref="Virtqueue"/>: its head index and its buffers, already validated (in RAM, no
/// loops, readable ones first) and copied out of the guest's descriptor table, so the guest cannot change them under
/// the device. Zero-length descriptors are dropped. The buffers live in the queue's scratch array: the chain is valid
/// until the next pop from the same queue. <c>foreach</c> over it uses a struct enumerator and allocates nothing.
/// </summary>
public readonly ref struct DescriptorChain
{
    private readonly GuestMemory _memory;

    internal DescriptorChain(GuestMemory memory, ushort head, ReadOnlySpan<VirtqDescriptor> descriptors,
        int readableCount, ulong readableLength, ulong writableLength)
    {
        _memory = memory;
        Head = head;
        Descriptors = descriptors;
        ReadableCount = readableCount;
        ReadableLength = readableLength;
        WritableLength = writableLength;
    }

    public ushort Head { get; }
    public ReadOnlySpan<VirtqDescriptor> Descriptors { get; }
    /// <summary>The device-readable descriptors come first; this many of them.</summary>
    public int ReadableCount { get; }
    public ulong ReadableLength { get; }
    public ulong WritableLength { get; }

    public ReadOnlySpan<VirtqDescriptor> Readable => Descriptors[..ReadableCount];
    public ReadOnlySpan<VirtqDescriptor> Writable => Descriptors[ReadableCount..];

    public ReadOnlySpan<VirtqDescriptor>.Enumerator GetEnumerator() => Descriptors.GetEnumerator();

    /// <summary>Copies device-readable bytes starting <paramref name="offset"/> bytes into them; returns how many.</summary>
    public int ReadFrom(ulong offset, Span<byte> destination)
    {
        int done = 0;
        foreach (var d in Readable)
        {
            if (done == destination.Length) break;
            if (offset >= d.Length) { offset -= d.Length; continue; }
            int n = (int)Math.Min(d.Length - offset, (ulong)(destination.Length - done));
            _memory.Read(d.Address + offset, destination.Slice(done, n));
            done += n;
            offset = 0;
        }
        return done;
    }

    /// <summary>Copies into device-writable bytes starting <paramref name="offset"/> bytes into them; returns how many.</summary>
    public int WriteTo(ulong offset, ReadOnlySpan<byte> source)
    {
        int done = 0;
        foreach (var d in Writable)
        {
            if (done == source.Length) break;
            if (offset >= d.Length) { offset -= d.Length; continue; }
            int n = (int)Math.Min(d.Length - offset, (ulong)(source.Length - done));
            _memory.Write(d.Address + offset, source.Slice(done, n));
            done += n;
            offset = 0;
        }
        return done;
    }
}
