using System.Runtime.InteropServices;

namespace SharpVmm.Memory;

/// <summary>The few libc calls guest RAM needs. Kept here so no other project maps memory by hand.</summary>
internal static unsafe partial class Native
{
    public const int ProtRead = 0x1, ProtWrite = 0x2, ProtExec = 0x4;
    public const int MapShared = 0x01, MapPrivate = 0x02, MapFixed = 0x10, MapAnonymous = 0x20, MapNoReserve = 0x4000, MapPopulate = 0x8000;
    public const int MadvMergeable = 12, MadvUnmergeable = 13, MadvHugepage = 14, MadvNoHugepage = 15, MadvDontNeed = 4, MadvPopulateWrite = 23;
    public const int EINVAL = 22, ENOMEM = 12;
    public static readonly nint MapFailed = -1;

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int mprotect(nint addr, nuint length, int prot);

    [LibraryImport("libc", SetLastError = true)]
    public static partial long syscall(long number, nint a1, nint a2, nint a3, nint a4);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int madvise(nint addr, nuint length, int advice);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int mincore(nint addr, nuint length, byte* vec);
}
