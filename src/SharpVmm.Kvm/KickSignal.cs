using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm;

/// <summary>
/// The real-time signal that interrupts a thread blocked in KVM_RUN. Its handler is one native <c>ret</c> instruction
/// in an executable page of its own: delivering the signal only makes KVM_RUN return EINTR, no managed code runs in
/// signal context. SA_RESTART keeps other syscalls the vCPU thread may be in from failing with EINTR.
/// Signals are process-wide, so this is installed once per process and never removed (the page is tiny).
/// </summary>
internal sealed unsafe class KickSignal
{
    private static readonly Lazy<KickSignal> s_instance = new(Install, LazyThreadSafetyMode.ExecutionAndPublication);

    private KickSignal(int number) => Number = number;

    public static KickSignal Instance => s_instance.Value;

    public int Number { get; }

    /// <summary>Sends the signal to <paramref name="thread"/>; returns 0 or an errno (ESRCH if the thread is gone).</summary>
    public int Send(nuint thread) => Libc.PthreadKill(thread, Number);

    private static KickSignal Install()
    {
        nint page = Libc.Mmap(0, 4096, Libc.ProtRead | Libc.ProtWrite, Libc.MapPrivate | Libc.MapAnonymous, -1, 0);
        if (page == Libc.MapFailed) throw KvmException.Ioctl("mmap of the vCPU kick handler page", Libc.LastErrno);
        *(byte*)page = 0xC3; // ret
        if (Libc.Mprotect(page, 4096, Libc.ProtRead | Libc.ProtExec) != 0)
        {
            int errno = Libc.LastErrno;
            Libc.Munmap(page, 4096);
            throw KvmException.Ioctl("mprotect of the vCPU kick handler page (is W^X enforced on executable mappings?)", errno);
        }

        // .NET uses SIGRTMIN itself (thread activation injection); start well above it and take the first signal
        // nobody has claimed, so a library that uses one of them keeps it.
        int min = Libc.CurrentSigRtMin() + 8, max = Libc.CurrentSigRtMax() - 1;
        for (int sig = min; sig <= max; sig++)
        {
            SigAction old;
            if (Libc.Sigaction(sig, null, &old) != 0 || old.Handler != 0) continue;
            var action = new SigAction { Handler = page, Flags = Libc.SaRestart };
            if (Libc.Sigaction(sig, &action, null) == 0) return new KickSignal(sig);
        }
        Libc.Munmap(page, 4096);
        throw new KvmException(KvmErrorKind.IoctlFailed, $"no free real-time signal between {min} and {max} to kick vCPUs with");
    }
}
