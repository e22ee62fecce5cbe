using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SharpVmm.Monitor.Protocol;

/// <summary>
/// Descriptors passed over a UNIX socket with SCM_RIGHTS, as a QEMU monitor receives them (libvirt's getfd sends
/// the descriptor with the command's bytes). Plain recv would drop them (the kernel closes what nobody asks for),
/// so the monitor reads with recvmsg. Layouts are Linux 64-bit (msghdr 56 bytes, cmsghdr 16).
/// </summary>
public static class UnixFdPassing
{
    private const int MaxFds = 16;
    private const int ControlBytes = 16 + MaxFds * 4;

    /// <summary>
    /// Reads what is there (without waiting) into <paramref name="buffer"/>, adding descriptors that came with it to
    /// <paramref name="fds"/> (close-on-exec). Returns the byte count, 0 at end of stream, -1 when nothing is ready.
    /// </summary>
    public static int Receive(Socket socket, Span<byte> buffer, List<int> fds)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(fds);
        nint data = Marshal.AllocHGlobal(Math.Max(1, buffer.Length));
        nint block = Marshal.AllocHGlobal(56 + 16 + ControlBytes);
        try
        {
            nint iov = block + 56, control = iov + 16;
            Clear(block, 56 + 16 + ControlBytes);
            Marshal.WriteIntPtr(iov, data);
            Marshal.WriteInt64(iov, 8, buffer.Length);
            Marshal.WriteIntPtr(block, 16, iov);
            Marshal.WriteInt64(block, 24, 1);
            Marshal.WriteIntPtr(block, 32, control);
            Marshal.WriteInt64(block, 40, ControlBytes);
            nint n;
            do n = Libc.RecvMsg((int)socket.Handle, block, Libc.MsgDontWait | Libc.MsgCmsgCloexec);
            while (n < 0 && Libc.LastErrno == Libc.EINTR);
            if (n < 0)
            {
                int errno = Libc.LastErrno;
                if (errno == Libc.EAGAIN) return -1;
                throw new SocketException(errno);
            }
            long controlLength = Marshal.ReadInt64(block, 40);
            for (long at = 0; at + 16 <= controlLength;)
            {
                long length = Marshal.ReadInt64(control, (int)at);
                if (length < 16) break;
                if (Marshal.ReadInt32(control, (int)at + 8) == Libc.SolSocket && Marshal.ReadInt32(control, (int)at + 12) == Libc.ScmRights)
                {
                    for (long i = 16; i + 4 <= length; i += 4)
                    {
                        fds.Add(Marshal.ReadInt32(control, (int)(at + i)));
                    }
                }
                at += (length + 7) & ~7L;
            }
            CopyOut(data, buffer[..(int)n]);
            return (int)n;
        }
        finally
        {
            Marshal.FreeHGlobal(block);
            Marshal.FreeHGlobal(data);
        }
    }

    /// <summary>Sends <paramref name="data"/> with <paramref name="fd"/> attached (blocking until all is sent).</summary>
    public static void Send(Socket socket, ReadOnlySpan<byte> data, int fd)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (data.IsEmpty) throw new ArgumentException("a descriptor travels with at least one byte", nameof(data));
        nint buf = Marshal.AllocHGlobal(data.Length);
        nint block = Marshal.AllocHGlobal(56 + 16 + 24);
        try
        {
            CopyIn(data, buf);
            nint iov = block + 56, control = iov + 16;
            Clear(block, 56 + 16 + 24);
            Marshal.WriteIntPtr(iov, buf);
            Marshal.WriteInt64(iov, 8, data.Length);
            Marshal.WriteIntPtr(block, 16, iov);
            Marshal.WriteInt64(block, 24, 1);
            Marshal.WriteIntPtr(block, 32, control);
            Marshal.WriteInt64(block, 40, 24);
            Marshal.WriteInt64(control, 0, 20);
            Marshal.WriteInt32(control, 8, Libc.SolSocket);
            Marshal.WriteInt32(control, 12, Libc.ScmRights);
            Marshal.WriteInt32(control, 16, fd);
            nint n;
            do n = Libc.SendMsg((int)socket.Handle, block, 0);
            while (n < 0 && Libc.LastErrno is Libc.EINTR or Libc.EAGAIN);
            if (n < 0) throw new SocketException(Libc.LastErrno);
            if (n < data.Length)
            {
                // The descriptor went with the first bytes; the rest is ordinary data.
                socket.Blocking = true;
                socket.Send(data[(int)n..]);
            }
        }
        finally
        {
            Marshal.FreeHGlobal(block);
            Marshal.FreeHGlobal(buf);
        }
    }

    /// <summary>Closes a descriptor received but never claimed.</summary>
    public static void Close(int fd)
    {
        if (fd >= 0) Libc.Close(fd);
    }

    private static void Clear(nint at, int length)
    {
        for (int i = 0; i < length; i += 8) Marshal.WriteInt64(at, i, 0);
    }

    private static void CopyOut(nint from, Span<byte> to)
    {
        var tmp = new byte[to.Length];
        Marshal.Copy(from, tmp, 0, to.Length);
        tmp.CopyTo(to);
    }

    private static void CopyIn(ReadOnlySpan<byte> from, nint to) => Marshal.Copy(from.ToArray(), 0, to, from.Length);
}
