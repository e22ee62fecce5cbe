using System.Runtime.InteropServices;
using System.Text;
using static SharpVmm.Interop.Libc;

namespace SharpVmm.Devices.Serial;

/// <summary>
/// A pseudo-terminal (QEMU's <c>-chardev pty</c>): the guest's serial line is the master side, and whoever opens
/// <see cref="Path"/> (<c>virsh console</c>, <c>screen</c>) is the terminal. The line is raw, so bytes pass
/// unchanged. Output while no one has the terminal open is buffered by the kernel up to its limit, then dropped, so
/// a vCPU never waits for a reader. Optionally every output byte is also appended to a log (libvirt hands a pipe
/// to virtlogd as <c>logfile=/dev/fdset/N</c>).
/// </summary>
public sealed class PtyBackend : ICharBackend
{

    private readonly int _master;
    private readonly int _log;
    private readonly object _writeGate = new();
    private Thread? _reader;
    private volatile bool _disposed;

    /// <param name="logPath">A file that gets a copy of the output; null for none.</param>
    /// <param name="logAppend">Append to the log instead of truncating it.</param>
    /// <param name="logFd">
    /// An inherited descriptor that gets the copy instead (libvirt's pipe to virtlogd; it cannot be reopened through
    /// /proc by an unprivileged process, since the pipe belongs to root); the backend owns it. -1 for none.
    /// </param>
    public PtyBackend(string? logPath = null, bool logAppend = false, int logFd = -1)
    {
        _log = logFd;
        _master = PosixOpenPt(ORdWr | ONoCtty | ONonBlock | OCloexec);
        if (_master < 0) throw Error("cannot open a pseudo-terminal (/dev/ptmx)");
        try
        {
            if (GrantPt(_master) != 0 || UnlockPt(_master) != 0) throw Error("cannot unlock the pseudo-terminal");
            var name = new byte[128];
            if (PtsName(_master, name) != 0) throw Error("cannot name the pseudo-terminal");
            Path = Encoding.UTF8.GetString(name, 0, Array.IndexOf(name, (byte)0));
            MakeRaw(Path);
            if (logPath is not null && logFd < 0)
            {
                _log = Open(logPath, OWrOnly | OCreat | OCloexec | (logAppend ? OAppend : OTrunc), 0x1A0 /* 0640 */);
                if (_log < 0) throw Error($"cannot open the serial log '{logPath}'");
            }
        }
        catch
        {
            Close(_master);
            throw;
        }
    }

    /// <summary>The terminal's device path, e.g. /dev/pts/3 (QMP's query-chardev reports it as "pty:/dev/pts/3").</summary>
    public string Path { get; }

    /// <summary>Raw mode on the terminal side (no echo, no CR/LF translation), as QEMU sets it.</summary>
    private static unsafe void MakeRaw(string slavePath)
    {
        int slave = Open(slavePath, ORdWr | ONoCtty | OCloexec, 0);
        if (slave < 0) throw Error($"cannot open {slavePath}");
        try
        {
            byte* t = stackalloc byte[TermiosSize];
            if (TcGetAttr(slave, t) != 0) throw Error("cannot read the terminal's settings");
            CfMakeRaw(t);
            if (TcSetAttr(slave, TcsaNow, t) != 0) throw Error("cannot set the terminal raw");
        }
        finally
        {
            Close(slave);
        }
    }

    private static unsafe int PtsName(int fd, byte[] name)
    {
        fixed (byte* p = name) return PtsNameR(fd, p, name.Length);
    }

    private static Core.ConfigurationException Error(string what)
        => new($"{what}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");

    public unsafe void Write(ReadOnlySpan<byte> data)
    {
        lock (_writeGate)
        {
            if (_disposed) return;
            fixed (byte* p = data)
            {
                // The terminal: non-blocking; what does not fit is dropped, like a line with no one listening.
                nint done = 0;
                while (done < data.Length)
                {
                    nint n = Libc.Write(_master, p + done, data.Length - done);
                    if (n > 0) { done += n; continue; }
                    if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
                    break;
                }
                if (_log >= 0) WriteAll(_log, p, data.Length);
            }
        }
    }

    private static unsafe void WriteAll(int fd, byte* p, int length)
    {
        nint done = 0;
        while (done < length)
        {
            nint n = Libc.Write(fd, p + done, length - done);
            if (n > 0) { done += n; continue; }
            if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
            return; // the log's reader is gone: the guest goes on without it
        }
    }

    public void Start(Action<ReadOnlySpan<byte>> onInput)
    {
        _reader = new Thread(() => ReadLoop(onInput)) { IsBackground = true, Name = "serial-pty" };
        _reader.Start();
    }

    private unsafe void ReadLoop(Action<ReadOnlySpan<byte>> onInput)
    {
        byte* buf = stackalloc byte[256];
        var pfd = new PollFd { Fd = _master, Events = PollIn };
        while (!_disposed)
        {
            pfd.Revents = 0;
            int r = Poll(&pfd, 1, 200);
            if (r <= 0) continue;
            if ((pfd.Revents & PollIn) != 0)
            {
                nint n = Read(_master, buf, 256);
                if (n > 0)
                {
                    onInput(new ReadOnlySpan<byte>(buf, (int)n));
                    continue;
                }
                if (n < 0 && Marshal.GetLastPInvokeError() is EAGAIN or EINTR) continue;
            }
            // No terminal open (POLLHUP / EIO): look again shortly rather than spin.
            if ((pfd.Revents & PollHup) != 0 || r > 0) Thread.Sleep(100);
        }
    }

    public void Dispose()
    {
        lock (_writeGate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _reader?.Join(1000);
        Close(_master);
        if (_log >= 0) Close(_log);
    }
}
