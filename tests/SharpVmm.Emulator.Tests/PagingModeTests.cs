using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class PagingModeTests
{
    private static VcpuState ProtectedState(ulong rip, ulong cr0, ulong cr3, ulong cr4)
    {
        var s = new VcpuState
        {
            Rip = rip, Rflags = 2, Cr0 = cr0, Cr3 = cr3, Cr4 = cr4,
            Gdt = new DescriptorTable { Base = TestGuest.GdtBase, Limit = 0x3F },
            Cs = new SegmentRegister { Selector = TestGuest.Code32, Type = 0xB, S = true, Present = true, Db = true, G = true, Limit = 0xFFFF_FFFF },
        };
        s.Ds = s.Es = s.Ss = s.Fs = s.Gs = new SegmentRegister { Selector = TestGuest.KernelDs, Type = 3, S = true, Present = true, Db = true, G = true, Limit = 0xFFFF_FFFF };
        s[Gpr.Rsp] = 0x70000;
        return s;
    }

    private static void Load32(TestGuest g, Action<Assembler> code, ulong at = 0x10000)
    {
        var a = new Assembler(32);
        code(a);
        g.Memory.Write(at, TestGuest.Assemble(a, at));
    }

    [Fact]
    public void Protected_mode_without_paging_uses_segment_bases()
    {
        using var g = new TestGuest();
        // A data segment based at 0x100000 in GDT slot 0x38.
        g.Memory.Write(TestGuest.GdtBase + 0x38, 0x00CF_9310_0000_FFFFUL);
        Load32(g, a =>
        {
            a.mov(ax, 0x38);
            a.mov(es, ax);
            a.mov(__dword_ptr.es[0x20], 0xDEADBEEF);
            a.push(0x1234);
            a.pop(ebx);
            a.hlt();
        });
        var st = ProtectedState(0x10000, 0x11, 0, 0);
        st.Gdt = new DescriptorTable { Base = TestGuest.GdtBase, Limit = 0x3F + 8 };
        g.Cpu.SetState(st);
        var s = g.RunToHalt();
        Assert.Equal(0xDEADBEEFu, g.Memory.Read<uint>(0x100020));
        Assert.Equal(0x1234UL, s[Gpr.Rbx]);
        Assert.Equal(0x38, s.Es.Selector);
    }

    [Fact]
    public void Legacy_32_bit_paging_with_4k_and_4m_pages()
    {
        using var g = new TestGuest();
        const ulong pd = 0x200000, pt = 0x201000;
        g.Memory.Write(pd + 0 * 4, (uint)(pt | 3));                     // 0-4 MiB via a page table
        for (uint i = 0; i < 1024; i++) g.Memory.Write(pt + i * 4, (i << 12) | 3);
        g.Memory.Write(pt + 0x50 * 4, 0x300000u | 3);                    // 0x50000 → 0x300000
        g.Memory.Write(pd + 2 * 4, 0x400000u | 0x83);                    // 8 MiB → 4 MiB (large page)
        Load32(g, a =>
        {
            a.mov(__dword_ptr[0x50010], 0x11111111);
            a.mov(__dword_ptr[0x800020], 0x22222222);
            a.hlt();
        });
        g.Cpu.SetState(ProtectedState(0x10000, 0x8000_0011, pd, 0x10));
        g.RunToHalt();
        Assert.Equal(0x11111111u, g.Memory.Read<uint>(0x300010));
        Assert.Equal(0x22222222u, g.Memory.Read<uint>(0x400020));
        Assert.Equal(0x60u, g.Memory.Read<uint>(pt + 0x50 * 4) & 0x60); // accessed + dirty
    }

    [Fact]
    public void Pae_paging_with_2m_pages()
    {
        using var g = new TestGuest();
        const ulong pdpt = 0x200000, pd = 0x201000;
        g.Memory.Write(pdpt, pd | 1);
        for (ulong i = 0; i < 8; i++) g.Memory.Write(pd + i * 8, (i << 21) | 0x83);
        g.Memory.Write(pd + 4 * 8, (2UL << 21) | 0x83);                  // 8 MiB → 4 MiB
        Load32(g, a =>
        {
            a.mov(__dword_ptr[0x800040], 0x33333333);
            a.hlt();
        });
        g.Cpu.SetState(ProtectedState(0x10000, 0x8000_0011, pdpt, 0x20));
        g.RunToHalt();
        Assert.Equal(0x33333333u, g.Memory.Read<uint>(0x400040));
    }

    [Fact]
    public void Long_mode_1g_page_and_compatibility_mode()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pdpt + 1 * 8, 0x87UL); // 1 GiB → physical 0 with a 1 GiB page
        // Compatibility-mode code at 0x30000 (32-bit CS under long mode) increments EAX then halts.
        var c32 = new Assembler(32);
        c32.inc(eax);
        c32.hlt();
        g.Memory.Write(0x30000UL, TestGuest.Assemble(c32, 0x30000));
        g.Memory.Write(0x40000UL, 0x30000u);
        g.Memory.Write(0x40004UL, (ushort)TestGuest.Code32);
        g.Load64(a =>
        {
            a.mov(rbx, 0x4005_0000);
            a.mov(__qword_ptr[rbx], 0x55);
            a.mov(eax, 41);
            a.jmp(__fword_ptr[0x40000]); // far jump through m16:32 into compatibility mode
        });
        var s = g.RunToHalt();
        Assert.Equal(0x55UL, g.Memory.Read<ulong>(0x50000));
        Assert.Equal(42UL, s[Gpr.Rax]);
        Assert.False(s.Cs.L);
        Assert.Equal(0x500UL, s.Efer & 0x500);
    }
}
