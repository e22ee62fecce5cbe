namespace SharpVmm.Machine;

/// <summary>The host (Linux) thread id of the calling thread: what QEMU reports as a vCPU's thread-id, so tools can pin or inspect it.</summary>
internal static class HostThread
{
    public static int CurrentId()
    {
        try { return Libc.GetTid(); }
        catch (EntryPointNotFoundException) { return 0; } // glibc < 2.30: unknown rather than wrong
    }
}
