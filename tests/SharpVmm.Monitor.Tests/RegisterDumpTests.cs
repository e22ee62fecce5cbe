using SharpVmm.Core.Cpu;
using SharpVmm.Monitor.Hmp;

namespace SharpVmm.Monitor.Tests;

public sealed class RegisterDumpTests
{
    [Fact]
    public void The_x86_reset_state_prints_as_QEMU_prints_it()
    {
        // Expected lines copied from qemu-system-x86_64 7.2 "info registers" on a fresh q35 machine (DR lines left
        // out: VcpuState has no debug registers).
        var s = new VcpuState { Rip = 0xFFF0 };
        s[Gpr.Rdx] = 0x60FB1;
        s.Cs = SegmentRegister.RealMode(0xF000, type: 0xB);
        s.Cs.Base = 0xFFFF0000;
        s.Es = s.Ss = s.Ds = s.Fs = s.Gs = SegmentRegister.RealMode(0);
        s.Ldtr = new SegmentRegister { Limit = 0xFFFF, Type = 2, Present = true };
        s.Tr = new SegmentRegister { Limit = 0xFFFF, Type = 0xB, Present = true };
        s.Gdt = new DescriptorTable { Limit = 0xFFFF };
        s.Idt = new DescriptorTable { Limit = 0xFFFF };
        string[] lines = RegisterDump.Format(s).Split('\n');
        Assert.Equal(
        [
            "EAX=00000000 EBX=00000000 ECX=00000000 EDX=00060fb1",
            "ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000",
            "EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0",
            "ES =0000 00000000 0000ffff 00009300",
            "CS =f000 ffff0000 0000ffff 00009b00",
            "SS =0000 00000000 0000ffff 00009300",
            "DS =0000 00000000 0000ffff 00009300",
            "FS =0000 00000000 0000ffff 00009300",
            "GS =0000 00000000 0000ffff 00009300",
            "LDT=0000 00000000 0000ffff 00008200",
            "TR =0000 00000000 0000ffff 00008b00",
            "GDT=     00000000 0000ffff",
            "IDT=     00000000 0000ffff",
            "CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000",
            "EFER=0000000000000000",
            "FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80",
            "FPR0=0000000000000000 0000 FPR1=0000000000000000 0000",
        ], lines[..17]);
        Assert.Equal("XMM06=0000000000000000 0000000000000000 XMM07=0000000000000000 0000000000000000", lines[^2]);
    }

    [Fact]
    public void Long_mode_prints_64_bit_registers_and_decodes_descriptors()
    {
        var s = new VcpuState { Rip = 0x100005, Rflags = 0x246, Efer = 0x500, Cr0 = 0x80000011, Cr3 = 0x9000, Cr4 = 0x20 };
        s[Gpr.Rbx] = 0x8000;
        s[Gpr.R8] = 0x1122334455667788;
        s.Cs = new SegmentRegister { Selector = 0x8, Limit = 0xFFFFFFFF, Type = 0xB, Present = true, S = true, L = true, G = true };
        s.Ds = new SegmentRegister { Selector = 0x10, Limit = 0xFFFFFFFF, Type = 0x3, Present = true, S = true, Db = true, G = true };
        s.Ss = s.Ds;
        s.Tr = new SegmentRegister { Selector = 0x18, Base = 0x5000, Limit = 0x67, Type = 0xB, Present = true };
        string text = RegisterDump.Format(s);
        Assert.Contains("RAX=0000000000000000 RBX=0000000000008000 RCX=0000000000000000 RDX=0000000000000000\n", text);
        Assert.Contains("R8 =1122334455667788 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000000\n", text);
        Assert.Contains("RIP=0000000000100005 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\n", text);
        Assert.Contains("CS =0008 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]\n", text);
        Assert.Contains("DS =0010 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]\n", text);
        Assert.Contains("TR =0018 0000000000005000 00000067 00008b00 DPL=0 TSS64-busy\n", text);
        Assert.Contains("CR0=80000011 CR2=0000000000000000 CR3=0000000000009000 CR4=00000020\n", text);
        Assert.Contains("XMM14=", text);
    }
}
