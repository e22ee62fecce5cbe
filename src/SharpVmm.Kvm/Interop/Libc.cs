using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary>The libc calls the KVM API needs. ioctl is variadic in C; on x86-64 passing the one pointer/integer argument as a fixed one is ABI-identical.</summary>
internal static unsafe partial class Libc
{
    public const int ORdWr = 0x2, OCloexec = 0x80000;
    public const int ProtRead = 0x1, ProtWrite = 0x2, ProtExec = 0x4;
    public const int MapShared = 0x01, MapPrivate = 0x02, MapAnonymous = 0x20;
    public const int ENOENT = 2, EINTR = 4, ENXIO = 6, E2BIG = 7, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14,
        EEXIST = 17, ENODEV = 19, EINVAL = 22, EPERM = 1, ENOTTY = 25, EOPNOTSUPP = 95;
    public const int SaRestart = 0x10000000;
    public static readonly nint MapFailed = -1;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, nint arg);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* arg);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint addr, nuint length);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(nint addr, nuint length, int prot);

    [LibraryImport("libc", EntryPoint = "pthread_self")]
    public static partial nuint PthreadSelf();

    /// <summary>Returns an errno value (not -1) on failure, as pthread functions do.</summary>
    [LibraryImport("libc", EntryPoint = "pthread_kill")]
    public static partial int PthreadKill(nuint thread, int signal);

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    public static partial int Sigaction(int signal, SigAction* action, SigAction* old);

    [LibraryImport("libc", EntryPoint = "__libc_current_sigrtmin")]
    public static partial int CurrentSigRtMin();

    [LibraryImport("libc", EntryPoint = "__libc_current_sigrtmax")]
    public static partial int CurrentSigRtMax();

    public static int LastErrno => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => errno switch
    {
        0 => "no error code",
        _ => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})",
    };
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
