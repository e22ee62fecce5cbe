using System.Runtime.InteropServices;

namespace SharpVmm.Machine.Sandbox;

/// <summary>The libc entry points the sandbox needs (Linux x86-64).</summary>
internal static unsafe partial class SandboxNative
{
    public const int PrSetNoNewPrivs = 38;
    public const long SysRtSigaction = 13;
    public const long SysSeccomp = 317;
    public const int Sigsys = 31;
    public const ulong SaSiginfo = 0x4, SaOnstack = 0x0800_0000, SaRestorer = 0x0400_0000;
    public const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;
    public const int MapPrivate = 0x02, MapAnonymous = 0x20;

    /// <summary>struct sock_fprog: the length is an unsigned short, padded to the pointer.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockFprog
    {
        public ushort Length;
        public SockFilter* Filter;
    }

    /// <summary>The kernel's struct sigaction on x86-64 (not glibc's: rt_sigaction is called directly).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct KernelSigaction
    {
        public nint Handler;
        public ulong Flags;
        public nint Restorer;
        public ulong Mask;
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint a2, nuint a3, nuint a4, nuint a5);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(nint addr, nuint length, int prot);

    public static string LastError() => Marshal.GetLastPInvokeErrorMessage();
}
