namespace SharpVmm.Core.Cpu;

/// <summary>
/// Named bits of CR0, CR4 and EFER (Intel SDM Vol. 3A, 2.5 "Control Registers" and 2.2.1 "Extended Feature Enable
/// Register"), shared by the boot code, the emulator and the monitor so none of them spells a mask as a number.
/// </summary>
public static class ControlBits
{
    public const ulong Cr0Pe = 1UL << 0, Cr0Mp = 1UL << 1, Cr0Em = 1UL << 2, Cr0Ts = 1UL << 3, Cr0Et = 1UL << 4, Cr0Ne = 1UL << 5;
    public const ulong Cr0Wp = 1UL << 16, Cr0Am = 1UL << 18, Cr0Nw = 1UL << 29, Cr0Cd = 1UL << 30, Cr0Pg = 1UL << 31;

    public const ulong Cr4Vme = 1UL << 0, Cr4Pvi = 1UL << 1, Cr4Tsd = 1UL << 2, Cr4De = 1UL << 3, Cr4Pse = 1UL << 4, Cr4Pae = 1UL << 5;
    public const ulong Cr4Mce = 1UL << 6, Cr4Pge = 1UL << 7, Cr4Pce = 1UL << 8, Cr4Osfxsr = 1UL << 9, Cr4OsXmmExcpt = 1UL << 10;
    public const ulong Cr4Umip = 1UL << 11, Cr4Pcide = 1UL << 17, Cr4Osxsave = 1UL << 18, Cr4Smep = 1UL << 20, Cr4Smap = 1UL << 21;
    public const ulong Cr4Pke = 1UL << 22;

    public const ulong EferSce = 1UL << 0, EferLme = 1UL << 8, EferLma = 1UL << 10, EferNxe = 1UL << 11;
}
