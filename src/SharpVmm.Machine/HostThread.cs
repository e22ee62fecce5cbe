using System.Runtime.InteropServices;

namespace SharpVmm.Machine;

/// <summary>The host (Linux) thread id of the calling thread: what QEMU reports as a vCPU's thread-id, so tools can pin or inspect it.</summary>
internal static class HostThread
{
    // DllImport rather than LibraryImport: no marshalling here, and LibraryImport would need unsafe code in this project.
#pragma warning disable SYSLIB1054
    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();
#pragma warning restore SYSLIB1054

    public static int CurrentId()
    {
        try { return GetTid(); }
        catch (EntryPointNotFoundException) { return 0; } // glibc < 2.30: unknown rather than wrong
    }
}
