using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class IntegerTests
{
    private static VcpuState Run(Action<Iced.Intel.Assembler> code)
    {
        using var g = new TestGuest();
        g.Load64(a => { code(a); a.hlt(); });
        var s = g.RunToHalt();
        Assert.Equal(0UL, g.ExceptionCount);
        return s;
    }

    private const ulong CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;

    [Fact]
    public void Add_and_sub_flags_at_sign_boundaries()
    {
        var s = Run(a => { a.mov(eax, 0x7FFFFFFF); a.add(eax, 1); });
        Assert.Equal(0x80000000UL, s[Gpr.Rax]);
        Assert.Equal(OF | SF | AF | PF, s.Rflags & (CF | PF | AF | ZF | SF | OF));
        s = Run(a => { a.xor(eax, eax); a.sub(al, 1); });
        Assert.Equal(0xFFUL, s[Gpr.Rax]);
        Assert.Equal(CF | SF | AF | PF, s.Rflags & (CF | PF | AF | ZF | SF | OF));
        s = Run(a => { a.mov(rax, -1L); a.add(rax, 1); });
        Assert.Equal(CF | ZF | AF | PF, s.Rflags & (CF | PF | AF | ZF | SF | OF));
    }

    [Fact]
    public void Adc_sbb_chain_128_bit_arithmetic()
    {
        var s = Run(a =>
        {
            a.mov(rax, -1L); a.mov(rdx, 5);
            a.add(rax, 1); a.adc(rdx, 0);          // 0x5_FFFF.. + 1 = 0x6_0000..
            a.mov(r8, 0); a.mov(r9, 6);
            a.sub(r8, 1); a.sbb(r9, 0);            // 0x6_0000.. - 1
        });
        Assert.Equal(0UL, s[Gpr.Rax]);
        Assert.Equal(6UL, s[Gpr.Rdx]);
        Assert.Equal(ulong.MaxValue, s[Gpr.R8]);
        Assert.Equal(5UL, s[Gpr.R9]);
    }

    [Fact]
    public void Inc_dec_preserve_carry()
    {
        var s = Run(a => { a.stc(); a.mov(eax, -1); a.inc(eax); a.setc(bl); a.setz(cl); a.clc(); a.dec(eax); a.setc(dl); });
        Assert.Equal(1UL, s[Gpr.Rbx] & 0xFF);
        Assert.Equal(1UL, s[Gpr.Rcx] & 0xFF);
        Assert.Equal(0UL, s[Gpr.Rdx] & 0xFF);
    }

    [Fact]
    public void Partial_register_writes_follow_x86_rules()
    {
        var s = Run(a =>
        {
            a.mov(rax, -1L); a.mov(al, 0x12); a.mov(ah, 0x34);
            a.mov(rbx, -1L); a.mov(bx, 0x5678);
            a.mov(rcx, -1L); a.mov(ecx, 0x9ABC);   // zero-extends
            a.mov(rdx, -1L); a.mov(sil, 1); a.mov(dil, 2);
        });
        Assert.Equal(0xFFFFFFFFFFFF3412UL, s[Gpr.Rax]);
        Assert.Equal(0xFFFFFFFFFFFF5678UL, s[Gpr.Rbx]);
        Assert.Equal(0x9ABCUL, s[Gpr.Rcx]);
        Assert.Equal(1UL, s[Gpr.Rsi] & 0xFF);
        Assert.Equal(2UL, s[Gpr.Rdi] & 0xFF);
    }

    [Fact]
    public void Multiply_and_divide_in_every_size()
    {
        var s = Run(a =>
        {
            a.mov(rax, 0x1_0000_0000L); a.mov(rcx, 0x1_0000_0001L); a.mul(rcx);      // rdx:rax
            a.mov(r8, rax); a.mov(r9, rdx);
            a.mov(eax, -7); a.cdq(); a.mov(ecx, 2); a.idiv(ecx);                       // -3 rem -1
            a.mov(r10, rax); a.mov(r11, rdx);
            a.mov(ax, 1000); a.mov(bl, 7); a.div(bl);                                  // al=142 ah=6
            a.mov(r12, rax);
            a.mov(rax, -3L); a.imul(rax, rax, 5);
            a.mov(r13, rax);
        });
        Assert.Equal(0x1_0000_0000UL, s[Gpr.R8]);
        Assert.Equal(1UL, s[Gpr.R9]);
        Assert.Equal(0xFFFFFFFDUL, s[Gpr.R10]);
        Assert.Equal(0xFFFFFFFFUL, s[Gpr.R11]);
        Assert.Equal((6UL << 8) | 142, s[Gpr.R12] & 0xFFFF);
        Assert.Equal(unchecked((ulong)-15L), s[Gpr.R13]);
    }

    [Fact]
    public void Shifts_rotates_and_double_shifts()
    {
        var s = Run(a =>
        {
            a.mov(eax, 0x80000001); a.shl(eax, 1); a.setc(r8b);        // CF=1, eax=2
            a.mov(ebx, 0x80000000); a.sar(ebx, 4);                      // 0xF8000000
            a.mov(ecx, 0x12345678); a.rol(ecx, 8);                      // 0x34567812
            a.mov(rdx, 1); a.stc(); a.rcr(rdx, 1);                      // CF in at the top, CF out 1
            a.setc(r9b);
            a.mov(esi, 0x0000FFFF); a.mov(edi, 0xABCD0000); a.shld(esi, edi, 16); // 0xFFFFABCD
            a.mov(r10, 0x8000); a.mov(cl, 3); a.shr(r10, cl);
        });
        Assert.Equal(2UL, s[Gpr.Rax]);
        Assert.Equal(1UL, s[Gpr.R8] & 0xFF);
        Assert.Equal(0xF8000000UL, s[Gpr.Rbx]);
        Assert.Equal(0x34567803UL, s[Gpr.Rcx] & 0xFFFFFFFF); // ROL result, then CL = 3
        Assert.Equal(0x8000000000000000UL, s[Gpr.Rdx]);
        Assert.Equal(1UL, s[Gpr.R9] & 0xFF);
        Assert.Equal(0xFFFFABCDUL, s[Gpr.Rsi]);
        Assert.Equal(0x1000UL, s[Gpr.R10]);
    }

    [Fact]
    public void Bit_instructions()
    {
        var s = Run(a =>
        {
            a.mov(eax, 0x100); a.bsf(ebx, eax); a.bsr(ecx, eax);
            a.xor(edx, edx); a.tzcnt(edx, edx);                           // 32
            a.mov(esi, 1); a.lzcnt(esi, esi);                             // 31
            a.mov(rdi, 0xF0F0); a.popcnt(rdi, rdi);                       // 8
            a.mov(r8, 0x12345678); a.bswap(r8d);
            a.mov(r9, 0); a.bts(r9, 40); a.setc(r10b);
            a.mov(__qword_ptr[0x40000], 0); a.mov(r11, 67); a.bts(__qword_ptr[0x40000], r11); // bit string: word +8, bit 3
            a.movbe(r12d, __dword_ptr[0x40008]);
        });
        Assert.Equal(8UL, s[Gpr.Rbx]);
        Assert.Equal(8UL, s[Gpr.Rcx]);
        Assert.Equal(32UL, s[Gpr.Rdx]);
        Assert.Equal(31UL, s[Gpr.Rsi]);
        Assert.Equal(8UL, s[Gpr.Rdi]);
        Assert.Equal(0x78563412UL, s[Gpr.R8]);
        Assert.Equal(1UL << 40, s[Gpr.R9]);
        Assert.Equal(0UL, s[Gpr.R10] & 0xFF);
        Assert.Equal(0x08000000UL, s[Gpr.R12]);
    }

    [Fact]
    public void Cmov_setcc_lahf_and_enter_leave()
    {
        var s = Run(a =>
        {
            a.mov(rax, -1L); a.mov(ecx, 5); a.cmp(ecx, 6); a.cmovge(eax, ecx); // not taken, still zero-extends
            a.mov(ebx, 3); a.cmp(ebx, 3); a.setge(dl); a.setl(dh);
            a.stc(); a.lahf(); a.mov(r8, rax);
            a.mov(rbp, 0x12345); a.enter(32, 0); a.mov(r9, rbp); a.mov(r10, rsp); a.leave(); a.mov(r11, rbp);
        });
        Assert.Equal(0x01UL, s[Gpr.Rdx] & 0xFFFF);
        Assert.Equal(0x4700UL, s[Gpr.R8] & 0xFF00); // ZF PF 1 CF
        Assert.Equal(TestGuest.StackTop - 8, s[Gpr.R9]);
        Assert.Equal(TestGuest.StackTop - 40, s[Gpr.R10]);
        Assert.Equal(0x12345UL, s[Gpr.R11]);
        Assert.Equal(TestGuest.StackTop, s[Gpr.Rsp]);
    }
}

public class LoopTests
{
    [Fact]
    public void Loop_and_jrcxz_use_the_address_size_counter()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            var l = a.CreateLabel();
            a.mov(rcx, -1L);
            a.mov(ecx, 5);               // upper half cleared: RCX = 5
            a.xor(eax, eax);
            a.Label(ref l);
            a.inc(eax);
            a.loop(l);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(5UL, s[Gpr.Rax]);
        Assert.Equal(0UL, s[Gpr.Rcx]);

        using var g2 = new TestGuest();
        g2.Load64(a =>
        {
            var z = a.CreateLabel();
            a.mov(rcx, 0x1_0000_0000L);  // ECX = 0 but RCX != 0
            a.jecxz(z);
            a.mov(ebx, 1);
            a.hlt();
            a.Label(ref z);
            a.jrcxz(z);                  // not taken: RCX != 0
            a.mov(ebx, 2);
            a.hlt();
        });
        Assert.Equal(2UL, g2.RunToHalt()[Gpr.Rbx]);
    }
}
