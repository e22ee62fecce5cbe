using SharpVmm.Core.Cpu;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Boot;

/// <summary>The vCPU state at the first guest instruction for each entry mode the loaders offer.</summary>
public static class EntryState
{
    /// <summary>
    /// 64-bit mode with paging: CS = <see cref="Gdt.CodeSelector"/> (L = 1), DS/ES/FS/GS/SS =
    /// <see cref="Gdt.DataSelector"/>, TR = <see cref="Gdt.TssSelector"/>, interrupts off, no IDT.
    /// </summary>
    public static VcpuState Long(DescriptorTable gdt, ulong cr3, ulong rip, ulong rsp)
    {
        var s = Flat(gdt, longMode: true);
        s.Cr0 = Cr0Pe | Cr0Et | Cr0Pg;
        s.Cr3 = cr3;
        s.Cr4 = Cr4Pae;
        s.Efer = EferLme | EferLma;
        s.Rip = rip;
        s[Gpr.Rsp] = rsp;
        return s;
    }

    /// <summary>32-bit protected mode, flat 4 GiB segments, paging off, interrupts off, no IDT.</summary>
    public static VcpuState Protected(DescriptorTable gdt, uint eip, uint esp)
    {
        var s = Flat(gdt, longMode: false);
        s.Cr0 = Cr0Pe | Cr0Et;
        s.Rip = eip;
        s[Gpr.Rsp] = esp;
        return s;
    }

    /// <summary>
    /// Real mode as after reset but for the registers given: CS:IP for the entry, DS = ES = FS = GS = CS (so a binary
    /// addresses its own data by offset, as a .COM file does), SS:SP for the stack, the IVT at 0 as IDT.
    /// </summary>
    public static VcpuState Real(ushort cs, ushort ip, ushort ss, ushort sp)
    {
        var s = new VcpuState();
        s.Cs = SegmentRegister.RealMode(cs, type: 0xB);
        s.Ds = s.Es = s.Fs = s.Gs = SegmentRegister.RealMode(cs);
        s.Ss = SegmentRegister.RealMode(ss);
        s.Tr = new SegmentRegister { Limit = 0xFFFF, Type = 0xB, Present = true };
        s.Ldtr = new SegmentRegister { Limit = 0xFFFF, Type = 0x2, Present = true };
        s.Gdt = new DescriptorTable { Base = 0, Limit = 0xFFFF };
        s.Idt = new DescriptorTable { Base = 0, Limit = 0x3FF };
        s.Rip = ip;
        s[Gpr.Rsp] = sp;
        return s;
    }

    private static VcpuState Flat(DescriptorTable gdt, bool longMode)
    {
        var s = new VcpuState { Rflags = 0x2 };
        s.Cs = Gdt.Segment(longMode, Gdt.CodeSelector);
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = Gdt.Segment(longMode, Gdt.DataSelector);
        s.Tr = Gdt.Segment(longMode, Gdt.TssSelector);
        s.Ldtr = new SegmentRegister { Unusable = true };
        s.Gdt = gdt;
        s.Idt = new DescriptorTable { Base = 0, Limit = 0 };
        return s;
    }
}
