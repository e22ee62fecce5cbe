using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Interop;

/// <summary>
/// The one libc binding of SharpVmm. This file is compiled into every project that calls libc (each csproj links it,
/// as internal), so no project depends on another for a syscall and Block still stands alone. x86-64 Linux with
/// glibc only: ioctl and open are variadic in C, and passing their one extra argument as a fixed one is
/// ABI-identical there; the structs are glibc's x86-64 layouts.
/// </summary>
internal static unsafe partial class Libc
{
    // The full soname: plain "libc" makes the runtime probe ~80 paths (libc.so is a linker script, then liblibc.so
    // everywhere) before it resolves, a measurable part of a ~6 ms `sharpvmm img info`; libc.so.6 is already loaded.
    private const string Library = "libc.so.6";

    public const int ORdOnly = 0, OWrOnly = 1, ORdWr = 2, OCreat = 0x40, ONoCtty = 0x100, OTrunc = 0x200,
        OAppend = 0x400, ONonBlock = 0x800, OCloexec = 0x80000;
    public const int ProtRead = 0x1, ProtWrite = 0x2, ProtExec = 0x4;
    public const int MapShared = 0x01, MapPrivate = 0x02, MapFixed = 0x10, MapAnonymous = 0x20, MapNoReserve = 0x4000,
        MapPopulate = 0x8000;
    public const int MadvDontNeed = 4, MadvMergeable = 12, MadvUnmergeable = 13, MadvHugepage = 14, MadvNoHugepage = 15,
        MadvPopulateWrite = 23;
    public const int MfdCloexec = 1;
    public const int FSetFd = 2, FdCloexec = 1;
    public const int SeekCur = 1;
    public const int SolSocket = 1, SoType = 3, ScmRights = 1, MsgDontWait = 0x40, MsgCmsgCloexec = 0x40000000;
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, ENXIO = 6, E2BIG = 7, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EFAULT = 14, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOTTY = 25, EOPNOTSUPP = 95;
    public const short PollIn = 1, PollPri = 2, PollOut = 4, PollErr = 8, PollHup = 0x10, PollNval = 0x20;
    public const int EfdNonBlock = 0x800, EfdCloexec = 0x80000;
    public const int ClockMonotonic = 1, TfdNonBlock = 0x800, TfdCloexec = 0x80000;
    public const int SaRestart = 0x10000000;
    public const int TcsaNow = 0;
    /// <summary>struct termios is 60 bytes on glibc; callers pass a buffer of this size, a little slack costs nothing.</summary>
    public const int TermiosSize = 64;
    public static readonly nint MapFailed = -1;

    // File descriptors

    [LibraryImport(Library, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode = 0);

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Library, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport(Library, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint count);

    public static nint Read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer) return Read(fd, p, buffer.Length);
    }

    public static nint Write(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data) return Write(fd, p, data.Length);
    }

    /// <summary>lseek on a descriptor we hold as a plain int (one handed over by libvirt).</summary>
    [LibraryImport(Library, EntryPoint = "lseek", SetLastError = true)]
    public static partial long Lseek(int fd, long offset, int whence);

    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int cmd, int arg);

    [LibraryImport(Library, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(Library, EntryPoint = "dup2", SetLastError = true)]
    public static partial int Dup2(int oldFd, int newFd);

    [LibraryImport(Library, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int Ftruncate(int fd, long length);

    [LibraryImport(Library, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MemfdCreate(string name, uint flags);

    [LibraryImport(Library, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, nint arg);

    [LibraryImport(Library, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* arg);

    [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    public static int Poll(Span<PollFd> fds, int timeoutMs)
    {
        fixed (PollFd* p = fds) return Poll(p, (nuint)fds.Length, timeoutMs);
    }

    [LibraryImport(Library, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initialValue, int flags);

    [LibraryImport(Library, EntryPoint = "timerfd_create", SetLastError = true)]
    public static partial int TimerFdCreate(int clockId, int flags);

    [LibraryImport(Library, EntryPoint = "timerfd_settime", SetLastError = true)]
    public static partial int TimerFdSetTime(int fd, int flags, ITimerSpec* value, ITimerSpec* oldValue);

    // Sockets (the msghdr is built by the caller: SCM_RIGHTS descriptor passing)

    [LibraryImport(Library, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, nint msg, int flags);

    [LibraryImport(Library, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, nint msg, int flags);

    [LibraryImport(Library, EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, int* value, int* length);

    // Memory

    [LibraryImport(Library, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Library, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint addr, nuint length);

    [LibraryImport(Library, EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(nint addr, nuint length, int prot);

    [LibraryImport(Library, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint a2, nuint a3, nuint a4, nuint a5);

    /// <summary>A raw system call, for calls glibc wraps differently from the kernel (rt_sigaction's kernel sigaction layout, seccomp).</summary>
    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4);

    [LibraryImport(Library, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint addr, nuint length, int advice);

    [LibraryImport(Library, EntryPoint = "mincore", SetLastError = true)]
    public static partial int Mincore(nint addr, nuint length, byte* vec);

    // Files as .NET holds them (Block)

    [LibraryImport(Library, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport(Library, EntryPoint = "lseek", SetLastError = true)]
    public static partial long Lseek(SafeFileHandle fd, long offset, int whence);

    [LibraryImport(Library, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int Fdatasync(SafeFileHandle fd);

    [LibraryImport(Library, EntryPoint = "fstat", SetLastError = true)]
    public static partial int Fstat(SafeFileHandle fd, out Stat st);

    [LibraryImport(Library, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int StatPath(string path, out Stat st);

    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(SafeFileHandle fd, int cmd, ref Flock lockInfo);

    // Terminals

    [LibraryImport(Library, EntryPoint = "isatty", SetLastError = true)]
    public static partial int IsATty(int fd);

    [LibraryImport(Library, EntryPoint = "tcgetattr", SetLastError = true)]
    public static partial int TcGetAttr(int fd, byte* termios);

    [LibraryImport(Library, EntryPoint = "tcsetattr", SetLastError = true)]
    public static partial int TcSetAttr(int fd, int actions, byte* termios);

    [LibraryImport(Library, EntryPoint = "cfmakeraw")]
    public static partial void CfMakeRaw(byte* termios);

    [LibraryImport(Library, EntryPoint = "posix_openpt", SetLastError = true)]
    public static partial int PosixOpenPt(int flags);

    [LibraryImport(Library, EntryPoint = "grantpt", SetLastError = true)]
    public static partial int GrantPt(int fd);

    [LibraryImport(Library, EntryPoint = "unlockpt", SetLastError = true)]
    public static partial int UnlockPt(int fd);

    [LibraryImport(Library, EntryPoint = "ptsname_r", SetLastError = true)]
    public static partial int PtsNameR(int fd, byte* buffer, nint length);

    // Threads and signals

    [LibraryImport(Library, EntryPoint = "setsid", SetLastError = true)]
    public static partial int SetSid();

    [LibraryImport(Library, EntryPoint = "gettid")]
    public static partial int GetTid();

    [LibraryImport(Library, EntryPoint = "pthread_self")]
    public static partial nuint PthreadSelf();

    /// <summary>Returns an errno value (not -1) on failure, as pthread functions do.</summary>
    [LibraryImport(Library, EntryPoint = "pthread_kill")]
    public static partial int PthreadKill(nuint thread, int signal);

    [LibraryImport(Library, EntryPoint = "sigaction", SetLastError = true)]
    public static partial int Sigaction(int signal, SigAction* action, SigAction* old);

    [LibraryImport(Library, EntryPoint = "__libc_current_sigrtmin")]
    public static partial int CurrentSigRtMin();

    [LibraryImport(Library, EntryPoint = "__libc_current_sigrtmax")]
    public static partial int CurrentSigRtMax();

    public static int LastErrno => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => errno switch
    {
        0 => "no error code",
        _ => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})",
    };
}

[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short Revents;
}

/// <summary>struct itimerspec: interval, then first expiry.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ITimerSpec
{
    public long IntervalSec;
    public long IntervalNsec;
    public long ValueSec;
    public long ValueNsec;
}

/// <summary>glibc's struct stat on x86-64.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Stat
{
    public ulong Dev, Ino, Nlink;
    public uint Mode, Uid, Gid, Pad0;
    public ulong Rdev;
    public long Size, BlkSize, Blocks;
    public long ATime, ATimeNs, MTime, MTimeNs, CTime, CTimeNs;
    public long R0, R1, R2;
}

/// <summary>struct flock, as fcntl's F_OFD_* commands take it.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Flock
{
    public short Type;
    public short Whence;
    public long Start;
    public long Len;
    public int Pid;
}

/// <summary>glibc's struct sigaction on x86-64 (152 bytes); glibc fills in sa_restorer itself.</summary>
[StructLayout(LayoutKind.Explicit, Size = 152)]
internal struct SigAction
{
    [FieldOffset(0)] public nint Handler;
    [FieldOffset(8)] public SigSet Mask;
    [FieldOffset(136)] public int Flags;
    [FieldOffset(144)] public nint Restorer;
}

[StructLayout(LayoutKind.Sequential, Size = 128)]
internal unsafe struct SigSet
{
    public fixed ulong Bits[16];
}
