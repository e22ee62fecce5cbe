using System.Runtime.InteropServices;
using System.Text;
using static SharpVmm.Interop.Libc;

namespace SharpVmm.Devices.Net.Tap;

/// <summary>
/// A Linux TAP interface (<c>/dev/net/tun</c>, IFF_TAP | IFF_NO_PI): frames written to the file descriptor appear on
/// the host interface, frames the host sends through it are read by a thread of our own. The interface exists while
/// the backend does, unless it was made persistent beforehand (<c>ip tuntap add NAME mode tap</c>); configuring its
/// addresses is the host administrator's business.
/// </summary>
public sealed class TapBackend : INetBackend
{
    public const string DevicePath = "/dev/net/tun";
    private const nuint TunSetIff = 0x400454CA; // _IOW('T', 202, int)
    private const short IffTap = 0x0002, IffNoPi = 0x1000;
    private const int IfNameSize = 16, IfReqSize = 40;
    private const int EPerm = 1, ENoEnt = 2, ENxio = 6, EAcces = 13, EBusy = 16, ENoDev = 19, EInval = 22;
    private const int ReadBufferSize = 65536 + 256; // a tap read truncates frames larger than the buffer

    private readonly int _fd;
    private readonly WakeupFd _wakeup;
    private Thread? _reader;
    private NetFrameHandler? _receive;
    private long _sendErrors;
    private int _disposed;

    /// <param name="name">Interface name (at most 15 bytes); a <c>%d</c> in it lets the kernel pick a free number.</param>
    public TapBackend(string name)
    {
        ValidateName(name);
        _fd = Open(DevicePath, ORdWr | OCloexec);
        if (_fd < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            throw new NetBackendException(e switch
            {
                ENoEnt => $"tap {name}: {DevicePath} does not exist: load the tun module (modprobe tun) or create the node (mknod {DevicePath} c 10 200)",
                ENxio or ENoDev => $"tap {name}: the kernel has no TUN/TAP driver behind {DevicePath}: load it with modprobe tun",
                EAcces or EPerm => $"tap {name}: no permission to open {DevicePath}: run as root or give your user access to it",
                _ => $"tap {name}: cannot open {DevicePath}: {Marshal.GetPInvokeErrorMessage(e)}",
            });
        }
        try
        {
            var ifr = new byte[IfReqSize];
            Encoding.ASCII.GetBytes(name, ifr);
            BitConverter.TryWriteBytes(ifr.AsSpan(IfNameSize), (short)(IffTap | IffNoPi));
            if (SetIff(_fd, ifr) < 0)
            {
                int e = Marshal.GetLastPInvokeError();
                throw new NetBackendException(e switch
                {
                    EPerm or EAcces => $"tap {name}: creating or attaching the interface needs CAP_NET_ADMIN: run as root, or create it for your user first (ip tuntap add dev {name} mode tap user $USER)",
                    EBusy => $"tap {name}: the interface is already in use by another process",
                    EInval => $"tap {name}: an interface of that name exists and is not a tap device (or the name is invalid): choose another ifname",
                    _ => $"tap {name}: TUNSETIFF failed: {Marshal.GetPInvokeErrorMessage(e)}",
                });
            }
            int len = Array.IndexOf(ifr, (byte)0, 0, IfNameSize);
            Name = Encoding.ASCII.GetString(ifr, 0, len < 0 ? IfNameSize : len);
            _wakeup = new WakeupFd();
        }
        catch
        {
            Close(_fd);
            throw;
        }
    }

    /// <summary>The interface's name as the kernel gave it (a <c>%d</c> template resolved).</summary>
    public string Name { get; }
    public string Description => "tap " + Name;
    /// <summary>Frames the kernel refused (e.g. the interface is down); they are dropped, as on a wire.</summary>
    public long SendErrors => Interlocked.Read(ref _sendErrors);

    public static void ValidateName(string name)
    {
        if (name.Length == 0 || Encoding.UTF8.GetByteCount(name) >= IfNameSize || name is "." or ".."
            || !Ascii.IsValid(name) || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
            throw new NetBackendException($"'{name}' is not a valid interface name: use 1 to {IfNameSize - 1} ASCII characters without '/', ':' or spaces");
    }

    public void Start(NetFrameHandler receive)
    {
        if (_receive is not null) throw new InvalidOperationException("the tap backend is already started");
        _receive = receive;
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "tap " + Name };
        _reader.Start();
    }

    public void Send(ReadOnlySpan<byte> frame)
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        if (Write(_fd, frame) < 0) Interlocked.Increment(ref _sendErrors);
    }

    private void ReadLoop()
    {
        var buffer = new byte[ReadBufferSize];
        var fds = new PollFd[2];
        while (Volatile.Read(ref _disposed) == 0)
        {
            fds[0] = new PollFd { Fd = _fd, Events = PollIn };
            fds[1] = new PollFd { Fd = _wakeup.Fd, Events = PollIn };
            if (Poll(fds, -1) < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR) continue;
                return;
            }
            if (fds[1].Revents != 0) return; // only Dispose signals
            if ((fds[0].Revents & (PollErr | PollHup | PollNval)) != 0) return;
            if ((fds[0].Revents & PollIn) == 0) continue;
            nint n = Read(_fd, buffer);
            if (n > 0) _receive!(buffer.AsSpan(0, (int)n));
            else if (n < 0 && Marshal.GetLastPInvokeError() is not (EINTR or EAGAIN)) return;
        }
    }

    private static unsafe int SetIff(int fd, byte[] ifr)
    {
        fixed (byte* p = ifr) return Ioctl(fd, TunSetIff, p);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _wakeup.Signal();
        if (_reader is not null && _reader != Thread.CurrentThread) _reader.Join();
        _wakeup.Dispose();
        Close(_fd);
    }
}
