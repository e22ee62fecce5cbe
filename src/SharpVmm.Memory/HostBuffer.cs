using System.Buffers;

namespace SharpVmm.Memory;

/// <summary>
/// A short-lived buffer of its own anonymous mapping, returned to the kernel the moment it is disposed. For large
/// one-off copies (a kernel on its way into guest RAM): the GC heap would keep the space committed, and malloc's
/// adaptive threshold would leave it in the brk heap after the first free.
/// </summary>
public sealed unsafe class HostBuffer : MemoryManager<byte>
{
    private nint _base;
    private readonly int _length;

    public HostBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _length = length;
        if (length == 0) return;
        nint p = Libc.Mmap(0, (nuint)length, Libc.ProtRead | Libc.ProtWrite, Libc.MapPrivate | Libc.MapAnonymous, -1, 0);
        if (p == Libc.MapFailed)
            throw new OutOfMemoryException($"cannot map a {length}-byte buffer (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        _base = p;
    }

    public override Span<byte> GetSpan()
    {
        ObjectDisposedException.ThrowIf(_base == 0 && _length != 0, this);
        return _length == 0 ? [] : new Span<byte>((void*)_base, _length);
    }

    public override MemoryHandle Pin(int elementIndex = 0) => new((byte*)_base + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing)
    {
        nint p = Interlocked.Exchange(ref _base, 0);
        if (p != 0) Libc.Munmap(p, (nuint)_length);
    }
}
