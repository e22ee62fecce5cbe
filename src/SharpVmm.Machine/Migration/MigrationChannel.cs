using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// The connection a migration stream travels on. A socket (TCP we opened, or a descriptor libvirt connected and
/// handed over) is two-way: the target acknowledges each round and the end. Anything else (the file of a
/// <c>virsh save</c>, a pipe) is one-way: nothing comes back, so the source neither waits for round acks nor for the
/// final word, and the target sends none. Both ends decide by the same rule, so they agree without telling each other.
/// </summary>
public sealed class MigrationChannel : IDisposable
{
    private MigrationChannel(Stream stream, Socket? socket, string description)
    {
        Stream = stream;
        Socket = socket;
        Description = description;
    }

    public Stream Stream { get; }

    /// <summary>The socket under <see cref="Stream"/>; null for a file or pipe.</summary>
    public Socket? Socket { get; }

    public bool TwoWay => Socket is not null;

    public string Description { get; }

    public static MigrationChannel ForSocket(Socket socket, string description)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return new MigrationChannel(new NetworkStream(socket, ownsSocket: true), socket, description);
    }

    /// <summary>Takes ownership of <paramref name="fd"/> (closed with the channel, also when this throws).</summary>
    public static MigrationChannel FromDescriptor(int fd, bool forWriting, string description)
    {
        if (fd < 0) throw new MigrationException($"{description}: {fd} is not a file descriptor");
        int kind = SocketType(fd, out int errno);
        if (kind < 0 && errno == Libc.EBADF)
            throw new MigrationException($"{description}: descriptor {fd} is not open in this process");
        if (kind == (int)System.Net.Sockets.SocketType.Stream)
        {
            Socket socket;
            try
            {
                socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            }
            catch (SocketException ex)
            {
                throw new MigrationException($"{description}: descriptor {fd} is an unusable socket: {ex.Message}", ex);
            }
            if (socket.ProtocolType == ProtocolType.Tcp) socket.NoDelay = true;
            return ForSocket(socket, description);
        }
        if (kind >= 0)
        {
            Libc.Close(fd);
            throw new MigrationException($"{description}: descriptor {fd} is a datagram socket; a migration needs a stream");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var stream = new FileStream(handle, forWriting ? FileAccess.Write : FileAccess.Read, bufferSize: 0);
            // libvirt writes (save) or reads (restore) its own header first and hands the descriptor over at that
            // offset; FileStream reads and writes at positions of its own, so start it where the descriptor is.
            if (stream.CanSeek)
            {
                long offset = Libc.Lseek(fd, 0, Libc.SeekCur);
                if (offset > 0) stream.Position = offset;
            }
            return new MigrationChannel(stream, null, description);
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            handle.Dispose();
            throw new MigrationException($"{description}: descriptor {fd} cannot be {(forWriting ? "written" : "read")}: {ex.Message}", ex);
        }
    }

    /// <summary>SO_TYPE of the descriptor, or -1 (with errno) when it is not a socket.</summary>
    private static unsafe int SocketType(int fd, out int errno)
    {
        int value = 0, length = sizeof(int);
        int rc = Libc.GetSockOpt(fd, Libc.SolSocket, Libc.SoType, &value, &length);
        errno = rc < 0 ? Libc.LastErrno : 0;
        return rc < 0 ? -1 : value;
    }

    public void Dispose()
    {
        try { Socket?.Shutdown(SocketShutdown.Both); }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        Stream.Dispose();
        Socket?.Dispose();
    }
}
