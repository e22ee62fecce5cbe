using System.Runtime.InteropServices;

namespace SharpVmm.Machine.Sandbox;

/// <summary>The kernel structures and numbers the sandbox needs (Linux x86-64); the calls are <see cref="Libc"/>'s.</summary>
internal static unsafe class SandboxNative
{
    public const int PrSetNoNewPrivs = 38;
    public const long SysRtSigaction = 13;
    public const long SysSeccomp = 317;
    public const int Sigsys = 31;
    public const ulong SaSiginfo = 0x4, SaOnstack = 0x0800_0000, SaRestorer = 0x0400_0000;

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

    public static string LastError() => Marshal.GetLastPInvokeErrorMessage();
}
