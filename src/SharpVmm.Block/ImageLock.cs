using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Block;

/// <summary>How an image file is opened, for its lock: QEMU's block permissions that matter between programs.</summary>
public enum ImageAccess
{
    /// <summary>Read and write; nobody else may write or resize (QEMU's read-write open).</summary>
    ReadWrite,
    /// <summary>Read; nobody else may write or resize meanwhile (QEMU's read-only open, and every backing file).</summary>
    ReadOnly,
    /// <summary>Read whatever others do (qemu-img's -U/--force-share); the data may be inconsistent.</summary>
    ReadShared,
}

/// <summary>
/// Image locking as QEMU's file-posix does it, so SharpVmm, QEMU, qemu-img and qemu-io refuse each other as they refuse
/// themselves: open-file-description byte-range locks (F_OFD_SETLK; they belong to the open file, so two opens in one
/// process conflict too, and close releases them). Byte 100+i is read-locked while this open uses permission i,
/// byte 200+i while it does not let others have permission i; the permissions are QEMU 7.2's BLK_PERM_* bits in order:
/// consistent read, write, write unchanged, resize. A conflict is another open's lock on the byte this one needs
/// free, found with F_OFD_GETLK after this open's locks are set (as QEMU does, so two racing opens both fail rather
/// than both succeed).
/// </summary>
public static partial class ImageLock
{
    private const int PermBase = 100;
    private const int SharedBase = 200;
    private const int PermCount = 4;
    private const int ConsistentRead = 1, Write = 2, Resize = 8, AllPerms = 15;
    private static readonly string[] Names = ["consistent read", "write", "write unchanged", "resize"];

    private const int ConflictPatienceMs = 2000;

    private const int F_OFD_GETLK = 36;
    private const int F_OFD_SETLK = 37;
    private const short F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;

    /// <summary>Set to "0" to take no locks (as QEMU's locking=off), e.g. on filesystems that cannot do them.</summary>
    private static readonly bool Disabled = Environment.GetEnvironmentVariable("SHARPVMM_IMAGE_LOCKING") == "0";

    /// <summary>
    /// Locks an open image file for <paramref name="access"/>, or throws a one-line <see cref="ImageLockedException"/>
    /// naming what the other holder does. Filesystems without OFD locks are used unlocked, as QEMU's locking=auto does.
    /// </summary>
    public static void Acquire(SafeFileHandle fh, string path, ImageAccess access)
    {
        if (Disabled || !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        var (perm, shared) = access switch
        {
            ImageAccess.ReadWrite => (ConsistentRead | Write | Resize, AllPerms & ~(Write | Resize)),
            ImageAccess.ReadOnly => (ConsistentRead, AllPerms & ~(Write | Resize)),
            _ => (ConsistentRead, AllPerms),
        };
        for (var i = 0; i < PermCount; i++)
        {
            if (!Set(fh, path, PermBase + i, (perm & (1 << i)) != 0 ? F_RDLCK : F_UNLCK)) return;
            if (!Set(fh, path, SharedBase + i, (shared & (1 << i)) == 0 ? F_RDLCK : F_UNLCK)) return;
        }
        // A child this process just forked holds a copy of every descriptor until it execs (the files are
        // close-on-exec), so a file this process closed a moment ago can still look locked: look again for a while.
        // On a loaded host fork-to-exec took over the 100 ms once allowed here; a real conflict costs two seconds.
        string? conflict = null;
        var started = Environment.TickCount64;
        for (var wait = 5; ; wait = Math.Min(wait * 2, 100))
        {
            conflict = Conflict(fh, perm, shared);
            if (conflict == null) return;
            if (Environment.TickCount64 - started >= ConflictPatienceMs) break;
            Thread.Sleep(wait);
        }
        Release(fh);
        var holder = HeldElsewhere(fh, PermBase + 1) ? "another program (or another disk of this VM) has it open read-write"
            : "another program (or another disk of this VM) has it open and does not let others write";
        var hint = access == ImageAccess.ReadWrite ? "" : "; -U (--force-share) reads it anyway";
        throw new ImageLockedException($"'{path}' is in use: {conflict}: {holder}{hint}");
    }

    private static string? Conflict(SafeFileHandle fh, int perm, int shared)
    {
        for (var i = 0; i < PermCount; i++)
        {
            if ((perm & (1 << i)) != 0 && HeldElsewhere(fh, SharedBase + i))
                return $"failed to get \"{Names[i]}\" lock";
            if ((shared & (1 << i)) == 0 && HeldElsewhere(fh, PermBase + i))
                return $"failed to get shared \"{Names[i]}\" lock";
        }
        return null;
    }

    /// <summary>Drops this open's locks (closing the file does it too).</summary>
    public static void Release(SafeFileHandle fh)
    {
        if (Disabled || !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        for (var i = 0; i < PermCount; i++)
        {
            Set(fh, "", PermBase + i, F_UNLCK);
            Set(fh, "", SharedBase + i, F_UNLCK);
        }
    }

    /// <summary>False when the filesystem cannot lock (EINVAL/ENOLCK/EOPNOTSUPP): the file is then used unlocked.</summary>
    private static bool Set(SafeFileHandle fh, string path, int b, short type)
    {
        var fl = new Flock { Type = type, Whence = 0, Start = b, Len = 1 };
        if (Libc.Fcntl(fh, F_OFD_SETLK, ref fl) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (errno is 22 or 37 or 95) return false; // EINVAL, ENOLCK, EOPNOTSUPP
        // EAGAIN/EACCES can only come from a write lock held elsewhere; QEMU never takes one, another tool might.
        if (errno is 11 or 13) throw new ImageLockedException($"'{path}' is in use: another program holds an exclusive lock on its byte {b}");
        throw new IOException($"fcntl(F_OFD_SETLK) failed (errno {errno})");
    }

    private static bool HeldElsewhere(SafeFileHandle fh, int b)
    {
        var fl = new Flock { Type = F_WRLCK, Whence = 0, Start = b, Len = 1 };
        if (Libc.Fcntl(fh, F_OFD_GETLK, ref fl) != 0) return false;
        return fl.Type != F_UNLCK;
    }
}

/// <summary>The image is in use by another program (or another open of this one) in a way that excludes this open.</summary>
public sealed class ImageLockedException(string message) : BlockImageException(message);
