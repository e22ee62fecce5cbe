using System.Runtime.CompilerServices;

namespace SharpVmm.Kvm.Interop;

/// <summary>
/// KVM ioctl request numbers, built the way linux/kvm.h builds them (_IO/_IOR/_IOW/_IOWR on type 0xAE with the
/// argument struct's size), so a wrong struct size shows up as a wrong number in the layout test.
/// </summary>
public static unsafe class KvmIoctl
{
    private const uint Kvmio = 0xAE;
    private const uint None = 0, Write = 1, Read = 2;

    private static nuint Ioc(uint dir, uint nr, int size) => (nuint)((dir << 30) | ((uint)size << 16) | (Kvmio << 8) | nr);
    private static nuint Io(uint nr) => Ioc(None, nr, 0);
    private static nuint Ior<T>(uint nr) where T : unmanaged => Ioc(Read, nr, sizeof(T));
    private static nuint Iow<T>(uint nr) where T : unmanaged => Ioc(Write, nr, sizeof(T));
    private static nuint Iowr<T>(uint nr) where T : unmanaged => Ioc(Read | Write, nr, sizeof(T));

    // /dev/kvm
    public static readonly nuint GetApiVersion = Io(0x00);
    public static readonly nuint CreateVm = Io(0x01);
    public static readonly nuint GetMsrIndexList = Iowr<KvmMsrList>(0x02);
    public static readonly nuint CheckExtension = Io(0x03);
    public static readonly nuint GetVcpuMmapSize = Io(0x04);
    public static readonly nuint GetSupportedCpuid = Iowr<KvmCpuid2>(0x05);

    // VM fd
    public static readonly nuint CreateVcpu = Io(0x41);
    public static readonly nuint GetDirtyLog = Iow<KvmDirtyLog>(0x42);
    public static readonly nuint SetUserMemoryRegion = Iow<KvmUserspaceMemoryRegion>(0x46);
    public static readonly nuint SetTssAddr = Io(0x47);
    public static readonly nuint SetIdentityMapAddr = Iow<ulong>(0x48);
    public static readonly nuint CreateIrqchip = Io(0x60);
    public static readonly nuint IrqLine = Iow<KvmIrqLevel>(0x61);
    public static readonly nuint CreatePit2 = Iow<KvmPitConfig>(0x77);
    public static readonly nuint GetIrqchip = Iowr<KvmIrqchip>(0x62);
    public static readonly nuint SetIrqchip = Ior<KvmIrqchip>(0x63); // _IOR in linux/kvm.h, although it writes
    public static readonly nuint SetClock = Iow<KvmClockData>(0x7b);
    public static readonly nuint GetClock = Ior<KvmClockData>(0x7c);
    public static readonly nuint GetPit2 = Ior<KvmPitState2>(0x9f);
    public static readonly nuint SetPit2 = Iow<KvmPitState2>(0xa0);

    // vCPU fd
    public static readonly nuint Run = Io(0x80);
    public static readonly nuint GetRegs = Ior<KvmRegs>(0x81);
    public static readonly nuint SetRegs = Iow<KvmRegs>(0x82);
    public static readonly nuint GetSregs = Ior<KvmSregs>(0x83);
    public static readonly nuint SetSregs = Iow<KvmSregs>(0x84);
    public static readonly nuint Interrupt = Iow<uint>(0x86);
    public static readonly nuint GetMsrs = Iowr<KvmMsrs>(0x88);
    public static readonly nuint SetMsrs = Iow<KvmMsrs>(0x89);
    public static readonly nuint GetFpu = Ior<KvmFpu>(0x8c);
    public static readonly nuint SetFpu = Iow<KvmFpu>(0x8d);
    public static readonly nuint GetLapic = Ior<KvmLapicState>(0x8e);
    public static readonly nuint SetLapic = Iow<KvmLapicState>(0x8f);
    public static readonly nuint SetCpuid2 = Iow<KvmCpuid2>(0x90);
    public static readonly nuint GetCpuid2 = Iowr<KvmCpuid2>(0x91);
    public static readonly nuint GetMpState = Ior<KvmMpState>(0x98);
    public static readonly nuint SetMpState = Iow<KvmMpState>(0x99);
    public static readonly nuint Nmi = Io(0x9a);
    public static readonly nuint GetVcpuEvents = Ior<KvmVcpuEvents>(0x9f);
    public static readonly nuint SetVcpuEvents = Iow<KvmVcpuEvents>(0xa0);
    public static readonly nuint GetXsave = Ior<KvmXsave>(0xa4);
    public static readonly nuint SetXsave = Iow<KvmXsave>(0xa5);
    public static readonly nuint GetXcrs = Ior<KvmXcrs>(0xa6);
    public static readonly nuint SetXcrs = Iow<KvmXcrs>(0xa7);
}
