using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm;

/// <summary>
/// Checks whether KVM_GET_DIRTY_LOG sees guest stores on this host, in a throw-away VM so the real guest is not
/// touched: a real-mode guest stores one byte to page 3 and halts, then the slot's dirty log must show page 3.
/// Needed because PVM's in-kernel emulator writes guest RAM without marking it (seen here): migration must then
/// copy all RAM instead of trusting the log.
/// </summary>
internal static unsafe class DirtyLogProbe
{
    private const ulong Size = 0x4000, CodeAt = 0x1000, StoreAt = 0x3000;
    private const byte Marker = 0x5A;

    public static bool Run(KvmSystem system, KvmOptions options, out string detail)
    {
        nint mem = Libc.Mmap(0, (nuint)Size, Libc.ProtRead | Libc.ProtWrite, Libc.MapPrivate | Libc.MapAnonymous, -1, 0);
        if (mem == Libc.MapFailed) throw KvmException.Ioctl("mmap of the dirty-log probe's RAM", Libc.LastErrno);
        try
        {
            // mov byte [0x3000], 0x5A ; hlt
            ReadOnlySpan<byte> code = [0xC6, 0x06, (byte)(StoreAt & 0xFF), (byte)(StoreAt >> 8), Marker, 0xF4];
            code.CopyTo(new Span<byte>((byte*)mem + CodeAt, code.Length));

            using var vm = system.CreateVm();
            if (vm.HasCapability(KvmCap.SetIdentityMapAddr)) vm.SetIdentityMapAddr(options.IdentityMapAddress);
            if (vm.HasCapability(KvmCap.SetTssAddr)) vm.SetTssAddr(options.TssAddress);
            vm.SetUserMemoryRegion(0, 0, Size, mem, KvmUserspaceMemoryRegion.LogDirtyPages);
            using var vcpu = vm.CreateVcpu(0);
            vcpu.SetCpuid(Cpuid.CpuidFilter.ForVcpu(system.GetSupportedCpuid(), 0));
            var sregs = vcpu.GetSregs();
            sregs.Cs.Base = 0;
            sregs.Cs.Selector = 0;
            sregs.Ds.Base = 0;
            sregs.Ds.Selector = 0;
            vcpu.SetSregs(sregs);
            vcpu.SetRegs(new KvmRegs { Rip = CodeAt, Rflags = 2 });

            Span<ulong> bitmap = stackalloc ulong[1];
            vm.GetDirtyLog(0, Size, bitmap); // start from a clean log

            int err = vcpu.RunOnce();
            var reason = (KvmExitReason)vcpu.Run->ExitReason;
            if (err != 0 || reason != KvmExitReason.Hlt)
            {
                detail = $"dirty-log probe guest did not reach HLT (KVM_RUN {(err != 0 ? Libc.Describe(err) : "exit " + reason)}); treating the dirty log as unusable";
                return false;
            }
            if (((byte*)mem)[StoreAt] != Marker)
            {
                detail = "dirty-log probe guest halted without its store reaching RAM; treating the dirty log as unusable";
                return false;
            }
            vm.GetDirtyLog(0, Size, bitmap);
            bool works = (bitmap[0] & (1UL << (int)(StoreAt >> 12))) != 0;
            detail = works
                ? "KVM's dirty log recorded the probe guest's store"
                : $"KVM's dirty log missed the probe guest's store to page {StoreAt >> 12} (bitmap 0x{bitmap[0]:x}): dirty tracking must fall back to copying all RAM";
            return works;
        }
        finally
        {
            Libc.Munmap(mem, (nuint)Size);
        }
    }
}
