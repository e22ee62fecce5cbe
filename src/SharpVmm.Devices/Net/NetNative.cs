using System.Runtime.InteropServices;

namespace SharpVmm.Devices.Net;

/// <summary>The few libc calls the network backends make: file descriptors, poll and an eventfd to wake a poller.</summary>
internal static class NetNative
{
    public const int ORdWr = 2, OCloExec = 0x80000, ONonBlock = 0x800;
    public const int EfdCloExec = 0x80000, EfdNonBlock = 0x800;
    public const short PollIn = 1, PollPri = 2, PollOut = 4, PollErr = 8, PollHup = 0x10, PollNval = 0x20;
    public const int EIntr = 4, EAgain = 11;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", SetLastError = true)]
    public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    public static extern int close(int fd);

    [DllImport("libc", SetLastError = true)]
    public static extern nint read(int fd, ref byte buffer, nuint count);

    [DllImport("libc", SetLastError = true)]
    public static extern nint write(int fd, ref byte buffer, nuint count);

    public static nint Read(int fd, Span<byte> buffer) => read(fd, ref MemoryMarshal.GetReference(buffer), (nuint)buffer.Length);

    public static nint Write(int fd, ReadOnlySpan<byte> data) => write(fd, ref MemoryMarshal.GetReference(data), (nuint)data.Length);

    [DllImport("libc", SetLastError = true)]
    public static extern int ioctl(int fd, nuint request, [In, Out] byte[] arg);

    [DllImport("libc", SetLastError = true)]
    public static extern int poll([In, Out] PollFd[] fds, nuint count, int timeoutMs);

    [DllImport("libc", SetLastError = true)]
    public static extern int eventfd(uint initval, int flags);

    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}

/// <summary>An eventfd another thread writes to wake a thread sleeping in poll (stop, or work queued for it).</summary>
internal sealed class WakeupFd : IDisposable
{
    private readonly byte[] _one = BitConverter.GetBytes(1UL);
    private readonly byte[] _sink = new byte[8];
    private int _fd;

    public WakeupFd()
    {
        _fd = NetNative.eventfd(0, NetNative.EfdCloExec | NetNative.EfdNonBlock);
        if (_fd < 0) throw new NetBackendException($"cannot create an eventfd: {NetNative.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    public int Fd => _fd;

    public void Signal()
    {
        int fd = Volatile.Read(ref _fd);
        if (fd >= 0) NetNative.Write(fd, _one);
    }

    /// <summary>Clears the signal after poll reported it.</summary>
    public void Consume() => NetNative.Read(_fd, _sink);

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) NetNative.close(fd);
    }
}
