using System.Runtime.InteropServices;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>The few libc calls the native runner needs to own an executable mapping at a chosen address.</summary>
internal static partial class DiffNative
{
    public const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;
    public const int MapPrivate = 0x02, MapAnonymous = 0x20, MapFixedNoReplace = 0x100000;
    public static readonly nint MapFailed = -1;

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);
}
