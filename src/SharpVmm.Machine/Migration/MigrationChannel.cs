using System.Net.Sockets;
using System.Runtime.InteropServices;
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
        if (kind < 0 && errno == EBadf)
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
            Close(fd);
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
                long offset = lseek(fd, 0, SeekCur);
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
    private static int SocketType(int fd, out int errno)
    {
        var value = new int[1];
        int length = sizeof(int);
        int rc = getsockopt(fd, SolSocket, SoType, value, ref length);
        errno = rc < 0 ? Marshal.GetLastPInvokeError() : 0;
        return rc < 0 ? -1 : value[0];
    }

    public void Dispose()
    {
        try { Socket?.Shutdown(SocketShutdown.Both); }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        Stream.Dispose();
        Socket?.Dispose();
    }

    private const int SolSocket = 1, SoType = 3, EBadf = 9, SeekCur = 1;

    // DllImport rather than LibraryImport: plain ints and an int array, and LibraryImport would need unsafe code here.
#pragma warning disable SYSLIB1054
    [DllImport("libc", SetLastError = true)]
    private static extern int getsockopt(int fd, int level, int name, [Out] int[] value, ref int length);

    [DllImport("libc", SetLastError = true)]
    private static extern long lseek(int fd, long offset, int whence);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
#pragma warning restore SYSLIB1054
}
