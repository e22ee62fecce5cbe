using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm;

/// <summary>
/// A KVM virtual machine (the fd KVM_CREATE_VM returns): memory slots, dirty logs, the in-kernel irqchip and PIT,
/// interrupt lines, and vCPU creation. Thin: every method is one ioctl plus argument checks.
/// </summary>
public sealed unsafe partial class KvmVm : IDisposable
{
    private int _fd;

    internal KvmVm(KvmSystem system, int fd)
    {
        System = system;
        _fd = fd;
    }

    public KvmSystem System { get; }

    internal int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_fd < 0, this);
            return _fd;
        }
    }

    /// <summary>KVM_CHECK_EXTENSION on the VM (answers can differ per VM type); falls back to /dev/kvm's answer on old kernels.</summary>
    public int CheckExtension(KvmCap cap)
    {
        int r = Libc.Ioctl(Fd, KvmIoctl.CheckExtension, (nint)cap);
        return r < 0 ? System.CheckExtension(cap) : r;
    }

    public bool HasCapability(KvmCap cap) => CheckExtension(cap) > 0;

    /// <summary>
    /// KVM_SET_USER_MEMORY_REGION: maps <paramref name="size"/> bytes of host memory at <paramref name="host"/> to guest
    /// physical <paramref name="guestPhys"/> in <paramref name="slot"/>; calling it again for a slot changes its flags.
    /// <paramref name="flags"/> is a mix of <see cref="KvmUserspaceMemoryRegion.LogDirtyPages"/> and <see cref="KvmUserspaceMemoryRegion.ReadOnly"/>.
    /// </summary>
    public void SetUserMemoryRegion(uint slot, ulong guestPhys, ulong size, nint host, uint flags = 0)
    {
        if (size == 0) throw new KvmException(KvmErrorKind.InvalidArgument, "a memory slot needs a non-zero size (use RemoveUserMemoryRegion to delete one)");
        if (((guestPhys | size | (ulong)host) & 0xFFF) != 0)
            throw new KvmException(KvmErrorKind.InvalidArgument, $"memory slot {slot}: guest address 0x{guestPhys:x}, size 0x{size:x} and host address must be 4 KiB aligned");
        if ((flags & ~(KvmUserspaceMemoryRegion.LogDirtyPages | KvmUserspaceMemoryRegion.ReadOnly)) != 0)
            throw new KvmException(KvmErrorKind.InvalidArgument, $"memory slot {slot}: unknown flags 0x{flags:x}");
        if ((flags & KvmUserspaceMemoryRegion.ReadOnly) != 0 && !HasCapability(KvmCap.ReadonlyMem))
            throw new KvmException(KvmErrorKind.MissingCapability, "this host's KVM lacks KVM_CAP_READONLY_MEM, needed for a read-only memory slot (ROM)");
        SetRegion(new KvmUserspaceMemoryRegion { Slot = slot, Flags = flags, GuestPhysAddr = guestPhys, MemorySize = size, UserspaceAddr = (ulong)host });
    }

    /// <summary>Deletes <paramref name="slot"/> (KVM_SET_USER_MEMORY_REGION with size 0); its guest range becomes MMIO.</summary>
    public void RemoveUserMemoryRegion(uint slot)
        => SetRegion(new KvmUserspaceMemoryRegion { Slot = slot });

    private void SetRegion(KvmUserspaceMemoryRegion region)
    {
        if (Libc.Ioctl(Fd, KvmIoctl.SetUserMemoryRegion, &region) < 0)
        {
            int errno = Libc.LastErrno;
            string why = errno == Libc.EEXIST ? " (it overlaps another slot)" : errno == Libc.EINVAL ? " (bad slot number, alignment or flags)" : "";
            throw KvmException.Ioctl($"KVM_SET_USER_MEMORY_REGION for slot {region.Slot} at 0x{region.GuestPhysAddr:x}+0x{region.MemorySize:x}{why}", errno);
        }
    }

    /// <summary>
    /// KVM_GET_DIRTY_LOG: copies the slot's dirty bitmap (bit n = page n of the slot written since the last call) into
    /// <paramref name="bitmap"/> and resets KVM's copy. The slot must have been registered with LogDirtyPages.
    /// </summary>
    public void GetDirtyLog(uint slot, ulong slotSize, Span<ulong> bitmap)
    {
        ulong pages = (slotSize + 0xFFF) >> 12;
        if ((ulong)bitmap.Length < (pages + 63) / 64)
            throw new KvmException(KvmErrorKind.InvalidArgument, $"dirty bitmap for slot {slot} needs {(pages + 63) / 64} words, got {bitmap.Length}");
        fixed (ulong* p = bitmap)
        {
            var log = new KvmDirtyLog { Slot = slot, DirtyBitmap = (ulong)p };
            if (Libc.Ioctl(Fd, KvmIoctl.GetDirtyLog, &log) < 0)
            {
                int errno = Libc.LastErrno;
                throw KvmException.Ioctl($"KVM_GET_DIRTY_LOG for slot {slot}{(errno == Libc.ENOENT ? " (dirty logging is off for that slot)" : "")}", errno);
            }
        }
    }

    /// <summary>KVM_SET_TSS_ADDR: three pages of guest-physical space, outside RAM, that Intel VMX uses for real-mode emulation.</summary>
    public void SetTssAddr(ulong address)
    {
        if (Libc.Ioctl(Fd, KvmIoctl.SetTssAddr, (nint)address) < 0) throw KvmException.Ioctl($"KVM_SET_TSS_ADDR 0x{address:x}", Libc.LastErrno);
    }

    /// <summary>KVM_SET_IDENTITY_MAP_ADDR: one page for VMX's real-mode identity page table; call before creating vCPUs.</summary>
    public void SetIdentityMapAddr(ulong address)
    {
        if (Libc.Ioctl(Fd, KvmIoctl.SetIdentityMapAddr, &address) < 0) throw KvmException.Ioctl($"KVM_SET_IDENTITY_MAP_ADDR 0x{address:x}", Libc.LastErrno);
    }

    /// <summary>KVM_CREATE_IRQCHIP: in-kernel PIC pair, IOAPIC and per-vCPU local APICs. Call before creating vCPUs.</summary>
    public void CreateIrqchip()
    {
        System.RequireCapability(KvmCap.Irqchip, "the in-kernel interrupt controller");
        if (Libc.Ioctl(Fd, KvmIoctl.CreateIrqchip, 0) < 0) throw KvmException.Ioctl("KVM_CREATE_IRQCHIP", Libc.LastErrno);
    }

    /// <summary>KVM_CREATE_PIT2: the in-kernel 8254 timer (needs the irqchip). <paramref name="flags"/> as <see cref="KvmPitConfig.SpeakerDummy"/>.</summary>
    public void CreatePit2(uint flags = KvmPitConfig.SpeakerDummy)
    {
        System.RequireCapability(KvmCap.Pit2, "the in-kernel PIT");
        var config = new KvmPitConfig { Flags = flags };
        if (Libc.Ioctl(Fd, KvmIoctl.CreatePit2, &config) < 0) throw KvmException.Ioctl("KVM_CREATE_PIT2 (is the irqchip created first?)", Libc.LastErrno);
    }

    /// <summary>KVM_IRQ_LINE: sets the level of GSI <paramref name="gsi"/> on the in-kernel irqchip.</summary>
    public void SetIrqLine(uint gsi, bool level)
    {
        var irq = new KvmIrqLevel { Irq = gsi, Level = level ? 1u : 0u };
        if (Libc.Ioctl(Fd, KvmIoctl.IrqLine, &irq) < 0) throw KvmException.Ioctl($"KVM_IRQ_LINE gsi {gsi}", Libc.LastErrno);
    }

    /// <summary>KVM_CREATE_VCPU with <paramref name="id"/> as its APIC ID, and maps its kvm_run page.</summary>
    public KvmVcpuFd CreateVcpu(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        int fd = Libc.Ioctl(Fd, KvmIoctl.CreateVcpu, id);
        if (fd < 0)
        {
            int errno = Libc.LastErrno;
            throw KvmException.Ioctl($"KVM_CREATE_VCPU {id}{(errno == Libc.EEXIST ? " (that vCPU exists already)" : errno == Libc.EINVAL ? " (index beyond KVM's vCPU limit?)" : "")}", errno);
        }
        return KvmVcpuFd.Map(fd, id, System.VcpuMmapSize);
    }

    public void Dispose()
    {
        if (_fd >= 0) Libc.Close(_fd);
        _fd = -1;
    }
}
