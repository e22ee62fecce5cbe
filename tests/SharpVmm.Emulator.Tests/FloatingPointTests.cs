using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class FloatingPointTests
{
    [Fact]
    public void Sse2_strlen_idiom_finds_the_terminator()
    {
        using var g = new TestGuest();
        var text = "hello, emulated world, this string is longer than sixteen bytes\0"u8.ToArray();
        g.Memory.Write(0x40000UL, text);
        g.Load64(a =>
        {
            var loop = a.CreateLabel();
            var found = a.CreateLabel();
            a.mov(rdi, 0x40000);
            a.pxor(xmm0, xmm0);
            a.Label(ref loop);
            a.movdqa(xmm1, __xmmword_ptr[rdi]);
            a.pcmpeqb(xmm1, xmm0);
            a.pmovmskb(eax, xmm1);
            a.test(eax, eax);
            a.jnz(found);
            a.add(rdi, 16);
            a.jmp(loop);
            a.Label(ref found);
            a.bsf(eax, eax);
            a.add(rax, rdi);
            a.sub(rax, 0x40000);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal((ulong)(text.Length - 1), s[Gpr.Rax]);
    }

    [Fact]
    public void Scalar_double_arithmetic_conversions_and_comisd()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x40000UL, 2.5);
        g.Load64(a =>
        {
            a.mov(eax, 3);
            a.cvtsi2sd(xmm0, eax);                  // 3.0
            a.addsd(xmm0, __qword_ptr[0x40000]);     // 5.5
            a.mulsd(xmm0, xmm0);                     // 30.25
            a.sqrtsd(xmm1, xmm0);                    // 5.5
            a.cvttsd2si(rbx, xmm0);                  // 30
            a.cvtsd2si(rcx, xmm1);                   // round-to-even 5.5 → 6
            a.comisd(xmm1, __qword_ptr[0x40000]);    // 5.5 > 2.5
            a.seta(dl);
            a.movq(r8, xmm1);
            a.movsd(__qword_ptr[0x40008], xmm0);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(30UL, s[Gpr.Rbx]);
        Assert.Equal(6UL, s[Gpr.Rcx]);
        Assert.Equal(1UL, s[Gpr.Rdx] & 0xFF);
        Assert.Equal(5.5, BitConverter.UInt64BitsToDouble(s[Gpr.R8]));
        Assert.Equal(30.25, g.Memory.Read<double>(0x40008));
        Assert.Equal(30.25, BitConverter.ToDouble(s.Fpu.Xmm, 0));
    }

    [Fact]
    public void Misaligned_movdqa_raises_gp()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.movdqa(xmm0, __xmmword_ptr[0x40008]);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(13UL, g.LoggedVector);
    }

    [Fact]
    public void Fxsave_and_fxrstor_round_trip_xmm_and_control_words()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(rax, 0x1122334455667788);
            a.movq(xmm7, rax);
            a.fninit();
            a.fld1();
            a.fxsave(__[0x41000]);
            a.pxor(xmm7, xmm7);
            a.fninit();
            a.fxrstor(__[0x41000]);
            a.movq(rbx, xmm7);
            a.fnstcw(__word_ptr[0x42000]);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x1122334455667788UL, s[Gpr.Rbx]);
        Assert.Equal((ushort)0x37F, g.Memory.Read<ushort>(0x42000));
        Assert.Equal(0x1F80u, g.Memory.Read<uint>(0x41000 + 24));
        Assert.Equal(0x1122334455667788UL, g.Memory.Read<ulong>(0x41000 + 160 + 7 * 16));
        // ST0 = 1.0 in 80-bit form: mantissa 0x8000000000000000, exponent 0x3FFF.
        Assert.Equal(0x8000000000000000UL, g.Memory.Read<ulong>(0x41000 + 32));
        Assert.Equal((ushort)0x3FFF, g.Memory.Read<ushort>(0x41000 + 40));
    }

    [Fact]
    public void X87_integer_load_arithmetic_and_store()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x40000UL, 7);
        g.Memory.Write(0x40008UL, 0.5);
        g.Load64(a =>
        {
            a.fninit();
            a.fild(__dword_ptr[0x40000]);        // 7
            a.fmul(__qword_ptr[0x40008]);       // 3.5
            a.fld1();                            // 1, 3.5
            a.faddp(st1, st0);                   // 4.5
            a.fistp(__dword_ptr[0x40010]);      // round to even: 4
            a.fnstsw(ax);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(4, g.Memory.Read<int>(0x40010));
        Assert.Equal(0UL, (s[Gpr.Rax] >> 11) & 7); // stack empty again: TOP back to 0
    }
}
