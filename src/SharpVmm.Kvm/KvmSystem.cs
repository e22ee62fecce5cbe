using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm;

/// <summary>
/// An open <c>/dev/kvm</c>: API version check, capabilities, host-wide queries (supported CPUID, MSR list) and
/// VM creation. Opening checks the API version, so a usable instance always speaks API 12.
/// </summary>
public sealed unsafe class KvmSystem : IDisposable
{
    public const string DefaultPath = "/dev/kvm";
    public const int ExpectedApiVersion = 12;

    private int _fd;
    private KvmCpuidEntry2[]? _supportedCpuid;
    private uint[]? _msrIndexList;

    private KvmSystem(int fd, string path, int apiVersion, int vcpuMmapSize)
    {
        _fd = fd;
        Path = path;
        ApiVersion = apiVersion;
        VcpuMmapSize = vcpuMmapSize;
    }

    public string Path { get; }
    public int ApiVersion { get; }

    /// <summary>Bytes to mmap from a vCPU fd: <c>struct kvm_run</c> plus the pages KVM puts after it (string I/O data, coalesced MMIO).</summary>
    public int VcpuMmapSize { get; }

    internal int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_fd < 0, this);
            return _fd;
        }
    }

    /// <summary>Opens KVM and checks it speaks API 12; every failure is a <see cref="KvmException"/> saying what to fix.</summary>
    public static KvmSystem Open(string path = DefaultPath)
    {
        int fd = Libc.Open(path, Libc.ORdWr | Libc.OCloexec);
        if (fd < 0) throw OpenError(path, Libc.LastErrno);
        try
        {
            int version = Libc.Ioctl(fd, KvmIoctl.GetApiVersion, 0);
            if (version < 0) throw KvmException.Ioctl($"KVM_GET_API_VERSION on {path}", Libc.LastErrno);
            if (CheckApiVersion(path, version) is { } mismatch) throw mismatch;
            int mmapSize = Libc.Ioctl(fd, KvmIoctl.GetVcpuMmapSize, 0);
            if (mmapSize < 0) throw KvmException.Ioctl("KVM_GET_VCPU_MMAP_SIZE", Libc.LastErrno);
            if (mmapSize < sizeof(KvmRun))
                throw new KvmException(KvmErrorKind.ApiMismatch, $"KVM's vCPU mapping ({mmapSize} bytes) is smaller than struct kvm_run ({sizeof(KvmRun)} bytes)");
            return new KvmSystem(fd, path, version, mmapSize);
        }
        catch
        {
            Libc.Close(fd);
            throw;
        }
    }

    /// <summary>The error for open(<paramref name="path"/>) failing with <paramref name="errno"/>.</summary>
    internal static KvmException OpenError(string path, int errno) => errno switch
    {
        Libc.ENOENT or Libc.ENODEV or Libc.ENXIO => new KvmException(KvmErrorKind.NoDevice,
            $"{path} does not exist: this host has no KVM (load the kvm-intel/kvm-amd module, enable virtualization in the firmware) or use the emu accelerator", errno),
        Libc.EACCES or Libc.EPERM => new KvmException(KvmErrorKind.NoPermission,
            $"no permission to open {path}: add this user to the 'kvm' group (or run as root), or use the emu accelerator", errno),
        _ => new KvmException(KvmErrorKind.IoctlFailed, $"cannot open {path}: {Libc.Describe(errno)}", errno),
    };

    /// <summary>Null when <paramref name="version"/> is the one this VMM speaks, otherwise the error to throw.</summary>
    internal static KvmException? CheckApiVersion(string path, int version) => version == ExpectedApiVersion ? null
        : new KvmException(KvmErrorKind.ApiMismatch,
            $"{path} speaks KVM API version {version}, SharpVmm needs {ExpectedApiVersion}: this kernel's KVM is not supported, use the emu accelerator");

    /// <summary>KVM_CHECK_EXTENSION: 0 when absent, otherwise 1 or a capability-specific number (slot count, vCPU count, ...).</summary>
    public int CheckExtension(KvmCap cap)
    {
        int r = Libc.Ioctl(Fd, KvmIoctl.CheckExtension, (nint)cap);
        return r < 0 ? 0 : r;
    }

    public bool HasCapability(KvmCap cap) => CheckExtension(cap) > 0;

    /// <summary>Throws <see cref="KvmErrorKind.MissingCapability"/> naming <paramref name="neededFor"/> when KVM lacks <paramref name="cap"/>.</summary>
    public void RequireCapability(KvmCap cap, string neededFor)
    {
        if (!HasCapability(cap))
            throw new KvmException(KvmErrorKind.MissingCapability,
                $"this host's KVM lacks KVM_CAP_{cap} ({(int)cap}), needed for {neededFor}: turn that option off or use the emu accelerator");
    }

    /// <summary>KVM_GET_SUPPORTED_CPUID: every leaf KVM can present to a guest (cached; callers get a copy).</summary>
    public KvmCpuidEntry2[] GetSupportedCpuid()
    {
        if (_supportedCpuid is null)
        {
            RequireCapability(KvmCap.ExtCpuid, "CPUID setup");
            for (int n = 64; ; n *= 2)
            {
                int bytes = sizeof(KvmCpuid2) + n * sizeof(KvmCpuidEntry2);
                byte[] buf = new byte[bytes];
                fixed (byte* p = buf)
                {
                    ((KvmCpuid2*)p)->NEnt = (uint)n;
                    if (Libc.Ioctl(Fd, KvmIoctl.GetSupportedCpuid, p) < 0)
                    {
                        int errno = Libc.LastErrno;
                        if (errno == Libc.E2BIG && n < 65536) continue;
                        throw KvmException.Ioctl("KVM_GET_SUPPORTED_CPUID", errno);
                    }
                    uint got = ((KvmCpuid2*)p)->NEnt;
                    _supportedCpuid = new ReadOnlySpan<KvmCpuidEntry2>(p + sizeof(KvmCpuid2), (int)got).ToArray();
                    break;
                }
            }
        }
        return (KvmCpuidEntry2[])_supportedCpuid.Clone();
    }

    /// <summary>KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and restore (cached; callers get a copy).</summary>
    public uint[] GetMsrIndexList()
    {
        if (_msrIndexList is null)
        {
            KvmMsrList probe = default;
            if (Libc.Ioctl(Fd, KvmIoctl.GetMsrIndexList, &probe) < 0 && Libc.LastErrno != Libc.E2BIG)
                throw KvmException.Ioctl("KVM_GET_MSR_INDEX_LIST", Libc.LastErrno);
            for (uint n = Math.Max(probe.NMsrs, 1); ; n *= 2)
            {
                uint[] buf = new uint[1 + n];
                fixed (uint* p = buf)
                {
                    p[0] = n;
                    if (Libc.Ioctl(Fd, KvmIoctl.GetMsrIndexList, p) < 0)
                    {
                        int errno = Libc.LastErrno;
                        if (errno == Libc.E2BIG && n < 65536) continue;
                        throw KvmException.Ioctl("KVM_GET_MSR_INDEX_LIST", errno);
                    }
                    _msrIndexList = buf.AsSpan(1, (int)p[0]).ToArray();
                    break;
                }
            }
        }
        return (uint[])_msrIndexList.Clone();
    }

    /// <summary>KVM_CREATE_VM with the default machine type.</summary>
    public KvmVm CreateVm()
    {
        int vmFd = Libc.Ioctl(Fd, KvmIoctl.CreateVm, 0);
        if (vmFd < 0)
        {
            int errno = Libc.LastErrno;
            throw KvmException.Ioctl(errno == Libc.ENOMEM ? "KVM_CREATE_VM (out of memory, or too many VMs)" : "KVM_CREATE_VM", errno);
        }
        return new KvmVm(this, vmFd);
    }

    public void Dispose()
    {
        if (_fd >= 0) Libc.Close(_fd);
        _fd = -1;
    }
}
