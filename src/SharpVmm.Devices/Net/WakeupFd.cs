using System.Runtime.InteropServices;

namespace SharpVmm.Devices.Net;

/// <summary>An eventfd another thread writes to wake a thread sleeping in poll (stop, or work queued for it).</summary>
internal sealed class WakeupFd : IDisposable
{
    private readonly byte[] _one = BitConverter.GetBytes(1UL);
    private readonly byte[] _sink = new byte[8];
    private int _fd;

    public WakeupFd()
    {
        _fd = Libc.EventFd(0, Libc.EfdCloexec | Libc.EfdNonBlock);
        if (_fd < 0) throw new NetBackendException($"cannot create an eventfd: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
    }

    public int Fd => _fd;

    public void Signal()
    {
        int fd = Volatile.Read(ref _fd);
        if (fd >= 0) Libc.Write(fd, _one);
    }

    /// <summary>Clears the signal after poll reported it.</summary>
    public void Consume() => Libc.Read(_fd, _sink);

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Libc.Close(fd);
    }
}
