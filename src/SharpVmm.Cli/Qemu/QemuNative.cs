using System.Runtime.InteropServices;

namespace SharpVmm.Cli.Qemu;

/// <summary>The few POSIX calls the QEMU personality's process handling needs (daemonizing, the readiness pipe).</summary>
internal static class QemuNative
{
#pragma warning disable SYSLIB1054 // DllImport: plain ints, nothing to marshal, and this project has no unsafe code
    [DllImport("libc", SetLastError = true)] public static extern int pipe2([Out] int[] fds, int flags);
    [DllImport("libc", SetLastError = true)] public static extern int fcntl(int fd, int cmd, int arg);
    [DllImport("libc", SetLastError = true)] public static extern int setsid();
    [DllImport("libc", SetLastError = true)] public static extern int dup2(int oldFd, int newFd);
    [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] public static extern nint read(int fd, [Out] byte[] buf, nint count);
    [DllImport("libc", SetLastError = true)] public static extern nint write(int fd, [In] byte[] buf, nint count);
    [DllImport("libc", SetLastError = true)] public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
#pragma warning restore SYSLIB1054

    public const int OCloexec = 0x80000, ORdwr = 2, FSetfd = 2, EIntr = 4;

    public static string LastError() => Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
}
