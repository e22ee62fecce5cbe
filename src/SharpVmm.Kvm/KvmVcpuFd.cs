using System.Runtime.CompilerServices;
using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm;

/// <summary>
/// One KVM vCPU fd and its mmap'd <c>struct kvm_run</c>: the raw ioctls, no policy. <see cref="KvmVcpu"/> builds the
/// exit loop and the portable state on top.
/// </summary>
public sealed unsafe class KvmVcpuFd : IDisposable
{
    private int _fd;
    private KvmRun* _run;

    private KvmVcpuFd(int fd, int id, KvmRun* run, int runSize)
    {
        _fd = fd;
        Id = id;
        _run = run;
        RunSize = runSize;
    }

    internal static KvmVcpuFd Map(int fd, int id, int mmapSize)
    {
        nint p = Libc.Mmap(0, (nuint)mmapSize, Libc.ProtRead | Libc.ProtWrite, Libc.MapShared, fd, 0);
        if (p == Libc.MapFailed)
        {
            int errno = Libc.LastErrno;
            Libc.Close(fd);
            throw KvmException.Ioctl($"mmap of vCPU {id}'s kvm_run ({mmapSize} bytes)", errno);
        }
        return new KvmVcpuFd(fd, id, (KvmRun*)p, mmapSize);
    }

    public int Id { get; }

    /// <summary>The shared kvm_run page; valid until Dispose. KVM writes exits here, user space writes I/O-in data back.</summary>
    public KvmRun* Run
    {
        get
        {
            ObjectDisposedException.ThrowIf(_run == null, this);
            return _run;
        }
    }

    /// <summary>Size of the kvm_run mapping in bytes; string-I/O data offsets must stay inside it.</summary>
    public int RunSize { get; }

    internal int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_fd < 0, this);
            return _fd;
        }
    }

    /// <summary>One KVM_RUN. Returns 0 when an exit is in <see cref="Run"/>, otherwise the errno (EINTR/EAGAIN when a signal or immediate_exit stopped it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int RunOnce() => Libc.Ioctl(_fd, KvmIoctl.Run, 0) < 0 ? Libc.LastErrno : 0;

    private void Get<T>(nuint request, string name, out T value) where T : unmanaged
    {
        T v;
        if (Libc.Ioctl(Fd, request, &v) < 0) throw KvmException.Ioctl($"{name} on vCPU {Id}", Libc.LastErrno);
        value = v;
    }

    private void Set<T>(nuint request, string name, in T value) where T : unmanaged
    {
        fixed (T* p = &value)
            if (Libc.Ioctl(Fd, request, p) < 0) throw KvmException.Ioctl($"{name} on vCPU {Id}", Libc.LastErrno);
    }

    public KvmRegs GetRegs() { Get(KvmIoctl.GetRegs, "KVM_GET_REGS", out KvmRegs v); return v; }
    public void SetRegs(in KvmRegs regs) => Set(KvmIoctl.SetRegs, "KVM_SET_REGS", regs);
    public KvmSregs GetSregs() { Get(KvmIoctl.GetSregs, "KVM_GET_SREGS", out KvmSregs v); return v; }
    public void SetSregs(in KvmSregs sregs) => Set(KvmIoctl.SetSregs, "KVM_SET_SREGS", sregs);
    public KvmFpu GetFpu() { Get(KvmIoctl.GetFpu, "KVM_GET_FPU", out KvmFpu v); return v; }
    public void SetFpu(in KvmFpu fpu) => Set(KvmIoctl.SetFpu, "KVM_SET_FPU", fpu);
    public KvmVcpuEvents GetVcpuEvents() { Get(KvmIoctl.GetVcpuEvents, "KVM_GET_VCPU_EVENTS", out KvmVcpuEvents v); return v; }
    public void SetVcpuEvents(in KvmVcpuEvents events) => Set(KvmIoctl.SetVcpuEvents, "KVM_SET_VCPU_EVENTS", events);
    public KvmMpState GetMpState() { Get(KvmIoctl.GetMpState, "KVM_GET_MP_STATE", out KvmMpState v); return v; }
    public void SetMpState(KvmMpState state) => Set(KvmIoctl.SetMpState, "KVM_SET_MP_STATE", state);

    /// <summary>KVM_GET_LAPIC: needs the in-kernel irqchip.</summary>
    public void GetLapic(out KvmLapicState lapic) => Get(KvmIoctl.GetLapic, "KVM_GET_LAPIC (is the in-kernel irqchip on?)", out lapic);
    public void SetLapic(in KvmLapicState lapic) => Set(KvmIoctl.SetLapic, "KVM_SET_LAPIC (is the in-kernel irqchip on?)", lapic);

    /// <summary>KVM_GET_XSAVE (needs KVM_CAP_XSAVE): the XSAVE area, including AVX state FPU/SSE does not cover.</summary>
    public void GetXsave(out KvmXsave xsave) => Get(KvmIoctl.GetXsave, "KVM_GET_XSAVE", out xsave);
    public void SetXsave(in KvmXsave xsave) => Set(KvmIoctl.SetXsave, "KVM_SET_XSAVE", xsave);

    /// <summary>KVM_GET_XCRS (needs KVM_CAP_XCRS): XCR0.</summary>
    public KvmXcrs GetXcrs() { Get(KvmIoctl.GetXcrs, "KVM_GET_XCRS", out KvmXcrs v); return v; }
    public void SetXcrs(in KvmXcrs xcrs) => Set(KvmIoctl.SetXcrs, "KVM_SET_XCRS", xcrs);

    /// <summary>KVM_INTERRUPT: queues an external interrupt vector (only without the in-kernel irqchip).</summary>
    public void Interrupt(byte vector)
    {
        uint v = vector;
        if (Libc.Ioctl(Fd, KvmIoctl.Interrupt, &v) < 0) throw KvmException.Ioctl($"KVM_INTERRUPT {vector} on vCPU {Id}", Libc.LastErrno);
    }

    /// <summary>
    /// KVM_GET_MSRS for the indexes in <paramref name="entries"/>; fills their data. Returns how many were read: KVM
    /// stops at the first MSR it cannot read, so a result below entries.Length names the failing one.
    /// </summary>
    public int GetMsrs(Span<KvmMsrEntry> entries) => MsrIoctl(KvmIoctl.GetMsrs, "KVM_GET_MSRS", entries, entries);

    /// <summary>KVM_SET_MSRS; returns how many were written (KVM stops at the first it refuses).</summary>
    public int SetMsrs(ReadOnlySpan<KvmMsrEntry> entries) => MsrIoctl(KvmIoctl.SetMsrs, "KVM_SET_MSRS", entries, []);

    private int MsrIoctl(nuint request, string name, ReadOnlySpan<KvmMsrEntry> entries, Span<KvmMsrEntry> result)
    {
        // State transfer, not the exit path: a heap buffer keeps this simple for any list length.
        byte[] buf = new byte[sizeof(KvmMsrs) + entries.Length * sizeof(KvmMsrEntry)];
        fixed (byte* p = buf)
        {
            ((KvmMsrs*)p)->NMsrs = (uint)entries.Length;
            var items = new Span<KvmMsrEntry>(p + sizeof(KvmMsrs), entries.Length);
            entries.CopyTo(items);
            int n = Libc.Ioctl(Fd, request, p);
            if (n < 0) throw KvmException.Ioctl($"{name} on vCPU {Id}", Libc.LastErrno);
            if (!result.IsEmpty) items.CopyTo(result);
            return n;
        }
    }

    /// <summary>KVM_SET_CPUID2: what CPUID returns to the guest. Must happen before the first KVM_RUN.</summary>
    public void SetCpuid(ReadOnlySpan<KvmCpuidEntry2> entries)
    {
        int bytes = sizeof(KvmCpuid2) + entries.Length * sizeof(KvmCpuidEntry2);
        byte[] buf = new byte[bytes];
        fixed (byte* p = buf)
        {
            ((KvmCpuid2*)p)->NEnt = (uint)entries.Length;
            entries.CopyTo(new Span<KvmCpuidEntry2>(p + sizeof(KvmCpuid2), entries.Length));
            if (Libc.Ioctl(Fd, KvmIoctl.SetCpuid2, p) < 0) throw KvmException.Ioctl($"KVM_SET_CPUID2 on vCPU {Id}", Libc.LastErrno);
        }
    }

    public void Dispose()
    {
        if (_run != null) Libc.Munmap((nint)_run, (nuint)RunSize);
        _run = null;
        if (_fd >= 0) Libc.Close(_fd);
        _fd = -1;
    }
}
