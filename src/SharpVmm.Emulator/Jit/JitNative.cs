using System.Runtime.CompilerServices;

namespace SharpVmm.Emulator.Jit;

/// <summary>
/// The libc calls the code buffer needs (Linux x86-64 only), by the names the code buffer knows them by; the
/// declarations themselves are the project's one libc binding (src/Shared/Libc.cs).
/// </summary>
internal static class JitNative
{
    public const int ProtNone = 0, ProtRead = Libc.ProtRead, ProtWrite = Libc.ProtWrite, ProtExec = Libc.ProtExec;
    public const int MapShared = Libc.MapShared, MapPrivate = Libc.MapPrivate, MapAnonymous = Libc.MapAnonymous,
        MapNoReserve = Libc.MapNoReserve;
    public const nint MapFailed = -1;
    public const uint MfdCloexec = Libc.MfdCloexec;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset)
        => Libc.Mmap(addr, length, prot, flags, fd, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Munmap(nint addr, nuint length) => Libc.Munmap(addr, length);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int MemfdCreate(string name, uint flags) => Libc.MemfdCreate(name, flags);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Ftruncate(int fd, nint length) => Libc.Ftruncate(fd, length);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Close(int fd) => Libc.Close(fd);
}
