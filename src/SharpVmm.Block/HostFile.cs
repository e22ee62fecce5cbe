using System.Runtime.InteropServices;
using System.Text;

namespace SharpVmm.Block;

/// <summary>What a path names on the host, as stat(2) says (after following symbolic links).</summary>
public enum HostFileKind { Missing, Regular, Directory, BlockDevice, CharDevice, Fifo, Socket, Other }

/// <summary>
/// Checks on file arguments before anything opens or reads them: opening a FIFO blocks until a writer comes, and
/// reading a character device such as /dev/zero never ends, so a path must be a file of the expected kind (and
/// size) first.
/// </summary>
public static partial class HostFile
{
    /// <summary>sockaddr_un's sun_path holds 108 bytes with the terminating NUL.</summary>
    public const int MaxSocketPathBytes = 107;

    public static HostFileKind KindOf(string path)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return Directory.Exists(path) ? HostFileKind.Directory : File.Exists(path) ? HostFileKind.Regular : HostFileKind.Missing;
        if (Libc.StatPath(path, out var st) != 0) return HostFileKind.Missing;
        return (st.Mode & 0xF000) switch
        {
            0x8000 => HostFileKind.Regular,
            0x4000 => HostFileKind.Directory,
            0x6000 => HostFileKind.BlockDevice,
            0x2000 => HostFileKind.CharDevice,
            0x1000 => HostFileKind.Fifo,
            0xC000 => HostFileKind.Socket,
            _ => HostFileKind.Other,
        };
    }

    public static string Describe(HostFileKind kind) => kind switch
    {
        HostFileKind.Missing => "does not exist",
        HostFileKind.Regular => "is a regular file",
        HostFileKind.Directory => "is a directory",
        HostFileKind.BlockDevice => "is a block device",
        HostFileKind.CharDevice => "is a character device",
        HostFileKind.Fifo => "is a FIFO",
        HostFileKind.Socket => "is a socket",
        _ => "is not a regular file",
    };

    /// <summary>
    /// Null when <paramref name="path"/> is a regular file (or, if allowed, a block device) of at most
    /// <paramref name="maxBytes"/>; otherwise why not, as "'PATH' is a FIFO: WHAT must be a regular file".
    /// A missing file is left to the open, which names it in its own words.
    /// </summary>
    public static string? Problem(string path, string what, bool blockDeviceOk = false, long maxBytes = long.MaxValue)
    {
        var kind = KindOf(path);
        if (kind == HostFileKind.Missing || kind == HostFileKind.Regular || (blockDeviceOk && kind == HostFileKind.BlockDevice))
        {
            if (kind == HostFileKind.Regular && maxBytes != long.MaxValue)
            {
                long length;
                try { length = new FileInfo(path).Length; }
                catch (IOException) { return null; }
                if (length > maxBytes) return $"{what} '{path}' is {length} bytes, more than the {maxBytes} allowed";
            }
            return null;
        }
        return $"{what} '{path}' {Describe(kind)}: it must be a regular file{(blockDeviceOk ? " or a block device" : "")}";
    }

    /// <summary>Null when a UNIX socket can be bound at <paramref name="path"/>; otherwise why not.</summary>
    public static string? SocketPathProblem(string path, string what)
    {
        if (path.Length == 0) return $"the {what} socket path is empty";
        if (Encoding.UTF8.GetByteCount(path) > MaxSocketPathBytes)
            return $"the {what} socket path '{path}' is longer than {MaxSocketPathBytes} bytes, the UNIX socket limit: use a shorter path";
        var kind = KindOf(path);
        if (kind is HostFileKind.Missing or HostFileKind.Socket) return null;
        return $"the {what} socket path '{path}' {Describe(kind)}; only a stale socket is replaced: remove it or pick another path";
    }
}
