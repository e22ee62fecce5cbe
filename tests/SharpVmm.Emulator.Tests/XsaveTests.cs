using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>XSAVE with x87 and SSE: XCR0 through XSETBV/XGETBV, the standard layout, init-state restores, the #UD/#GP rules.</summary>
public class XsaveTests
{
    private const ulong Area = 0x60000; // 64-byte aligned
    private const uint Osxsave = 1u << 18;

    private static void EnableOsxsave(Assembler a)
    {
        a.mov(rax, cr4);
        a.or(eax, (int)Osxsave);
        a.mov(cr4, rax);
    }

    [Fact]
    public void Cpuid_leaf_0xd_describes_x87_sse_and_pkru_and_osxsave_follows_cr4()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(eax, 0xD); a.xor(ecx, ecx); a.cpuid();
            a.mov(r8d, eax); a.mov(r9d, ebx); a.mov(r10d, ecx);
            a.mov(eax, 0xD); a.mov(ecx, 1); a.cpuid();
            a.mov(r11d, eax);
            a.mov(eax, 1); a.cpuid(); a.mov(r12d, ecx);
            EnableOsxsave(a);
            a.mov(eax, 1); a.cpuid(); a.mov(r13d, ecx);
            a.xor(eax, eax); a.cpuid(); a.mov(r14d, eax);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x203UL, s[Gpr.R8]);             // x87, SSE, PKRU (PkuTests)
        Assert.Equal(576UL, s[Gpr.R9]);                // for XCR0 = x87: legacy region + header
        Assert.Equal(584UL, s[Gpr.R10]);               // for everything: PKRU after the header
        Assert.Equal(1UL, s[Gpr.R11]);                 // XSAVEOPT only
        Assert.Equal(0UL, s[Gpr.R12] & (1UL << 27));
        Assert.NotEqual(0UL, s[Gpr.R13] & (1UL << 27));
        Assert.Equal(0xDUL, s[Gpr.R14]);
    }

    [Fact]
    public void Xgetbv_and_xsetbv_need_cr4_osxsave_and_take_only_supported_masks_with_x87()
    {
        using var g = new TestGuest();
        g.Load64(a => { a.xor(ecx, ecx); a.xgetbv(); a.hlt(); });
        g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);

        foreach (uint bad in new uint[] { 0, 2, 7 })
        {
            using var b = new TestGuest();
            b.Load64(a =>
            {
                EnableOsxsave(a);
                a.xor(ecx, ecx); a.xor(edx, edx); a.mov(eax, bad);
                a.xsetbv();
                a.hlt();
            });
            b.RunToHalt();
            Assert.Equal(13UL, b.LoggedVector);
        }

        using var ok = new TestGuest();
        ok.Load64(a =>
        {
            EnableOsxsave(a);
            a.xor(ecx, ecx); a.xgetbv(); a.mov(r8, rax);
            a.xor(edx, edx); a.mov(eax, 3); a.xsetbv();
            a.xor(ecx, ecx); a.xgetbv(); a.mov(r9, rax);
            a.hlt();
        });
        var s = ok.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R8]);
        Assert.Equal(3UL, s[Gpr.R9]);
        Assert.Equal(3UL, s.Xcr0);
    }

    [Fact]
    public void Xsave_stores_the_standard_layout_and_xrstor_loads_it_back_or_the_init_state()
    {
        using var g = new TestGuest();
        g.Memory.Write(Area + 512, 0x8000UL);          // a stale XSTATE_BV bit outside the request stays
        g.Load64(a =>
        {
            EnableOsxsave(a);
            a.xor(ecx, ecx); a.xor(edx, edx); a.mov(eax, 3); a.xsetbv();
            a.mov(rax, 0x1122_3344_5566_7788L);
            a.movq(xmm0, rax);
            a.fld1();
            a.mov(eax, -1); a.mov(edx, -1);
            a.mov(rbx, Area);
            a.xsave64(__[rbx]);
            a.mov(r10, __qword_ptr[rbx + 512]);        // XSTATE_BV as XSAVE left it
            a.pxor(xmm0, xmm0);
            a.mov(eax, 3); a.xor(edx, edx);
            a.mov(__qword_ptr[rbx + 512], 3);          // clean header for XRSTOR
            a.xrstor64(__[rbx]);
            a.movq(r8, xmm0);                          // restored from memory
            a.mov(__qword_ptr[rbx + 512], 1);          // SSE in its init state
            a.mov(__dword_ptr[rbx + 24], 0x1F80 | 0x40); // MXCSR is still loaded (DAZ)
            a.mov(eax, 3);
            a.xrstor64(__[rbx]);
            a.movq(r9, xmm0);
            a.stmxcsr(__dword_ptr[rbx + 1024]);
            a.hlt();
        });
        var s = g.RunToHalt();
        var m = g.Memory;
        Assert.Equal(0x037FUL, m.Read<ushort>(Area));                 // FCW
        Assert.Equal(0x1122_3344_5566_7788UL, m.Read<ulong>(Area + 160)); // XMM0
        Assert.Equal(0x1F80u, m.Read<uint>(Area + 24) & ~0x40u);
        Assert.Equal(0x8003UL, s[Gpr.R10]);                          // x87|SSE stored; the untouched bit kept
        Assert.Equal(0x1122_3344_5566_7788UL, s[Gpr.R8]);
        Assert.Equal(0UL, s[Gpr.R9]);
        Assert.Equal(0x1FC0u, m.Read<uint>(Area + 1024));
    }

    [Fact]
    public void Xsave_of_x87_only_leaves_the_sse_part_of_the_area_alone()
    {
        using var g = new TestGuest();
        g.Memory.Write(Area + 160, 0xAAAA_AAAA_AAAA_AAAAUL);
        g.Load64(a =>
        {
            EnableOsxsave(a);
            a.xor(ecx, ecx); a.xor(edx, edx); a.mov(eax, 3); a.xsetbv();
            a.mov(eax, 1); a.xor(edx, edx);
            a.mov(rbx, Area);
            a.xsave64(__[rbx]);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(0xAAAA_AAAA_AAAA_AAAAUL, g.Memory.Read<ulong>(Area + 160));
        Assert.Equal(1UL, g.Memory.Read<ulong>(Area + 512));
    }

    [Theory]
    [InlineData(0, 0UL, 1UL << 40)]   // XCOMP_BV set: the compacted form is not supported
    [InlineData(0, 4UL, 0UL)]         // XSTATE_BV names a component outside XCR0
    [InlineData(16, 3UL, 0UL)]        // misaligned area
    public void Xrstor_refuses_malformed_headers_and_misaligned_areas(int misalign, ulong bv, ulong xcomp)
    {
        using var g = new TestGuest();
        g.Memory.Write(Area + 512 + (ulong)misalign, bv);
        g.Memory.Write(Area + 520 + (ulong)misalign, xcomp);
        g.Load64(a =>
        {
            EnableOsxsave(a);
            a.xor(ecx, ecx); a.xor(edx, edx); a.mov(eax, 3); a.xsetbv();
            a.mov(eax, 3);
            a.mov(rbx, Area + (ulong)misalign);
            a.xrstor64(__[rbx]);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(13UL, g.LoggedVector);
    }

    [Fact]
    public void Xcr0_survives_get_and_set_state()
    {
        using var g = new TestGuest();
        var s = TestGuest.LongModeState(TestGuest.CodeBase);
        s.Cr4 |= Osxsave;
        s.Xcr0 = 3;
        g.Cpu.SetState(s);
        Assert.Equal(3UL, g.Cpu.GetState().Xcr0);
        s.Xcr0 = 7;                                      // AVX: not this CPU's
        g.Cpu.SetState(s);
        Assert.Equal(3UL, g.Cpu.GetState().Xcr0);
    }
}
