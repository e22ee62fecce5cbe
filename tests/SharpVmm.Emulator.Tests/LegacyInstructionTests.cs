using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// Instructions that only exist outside 64-bit mode (the host cannot run them in the differential harness):
/// expected values are worked out from the SDM pseudo-code.
/// </summary>
public class LegacyInstructionTests
{
    private const ulong Out = 0x40000;

    [Fact]
    public void Decimal_adjust_after_add_and_subtract()
    {
        using var g = new Guest32();
        g.Run(a =>
        {
            a.mov(al, 0x79); a.add(al, 0x35); a.daa(); a.mov(__byte_ptr[Out], al); a.setc(__byte_ptr[Out + 1]);      // 79+35=114
            a.mov(al, 0x38); a.add(al, 0x29); a.daa(); a.mov(__byte_ptr[Out + 2], al); a.setc(__byte_ptr[Out + 3]);  // 38+29=67
            a.mov(al, 0x35); a.sub(al, 0x47); a.das(); a.mov(__byte_ptr[Out + 4], al); a.setc(__byte_ptr[Out + 5]);  // 35-47=-12 → 88, borrow
            a.mov(al, 0x86); a.sub(al, 0x07); a.das(); a.mov(__byte_ptr[Out + 6], al); a.setc(__byte_ptr[Out + 7]);  // 86-07=79
            a.mov(al, 0x50); a.add(al, 0x50); a.daa(); a.mov(__byte_ptr[Out + 8], al); a.setz(__byte_ptr[Out + 9]);   // 50+50=100: AL 00, ZF
            a.hlt();
        });
        var m = g.G.Memory;
        Assert.Equal(0x14, m.Read<byte>(Out)); Assert.Equal(1, m.Read<byte>(Out + 1));
        Assert.Equal(0x67, m.Read<byte>(Out + 2)); Assert.Equal(0, m.Read<byte>(Out + 3));
        Assert.Equal(0x88, m.Read<byte>(Out + 4)); Assert.Equal(1, m.Read<byte>(Out + 5));
        Assert.Equal(0x79, m.Read<byte>(Out + 6)); Assert.Equal(0, m.Read<byte>(Out + 7));
        Assert.Equal(0x00, m.Read<byte>(Out + 8)); Assert.Equal(1, m.Read<byte>(Out + 9));
    }

    [Fact]
    public void Ascii_adjust_instructions()
    {
        using var g = new Guest32();
        var s = g.Run(a =>
        {
            a.mov(ax, 0x0008); a.add(al, 6); a.aaa(); a.mov(__word_ptr[Out], ax); a.setc(__byte_ptr[Out + 2]);       // 8+6 = 14
            a.mov(ax, 0x0103); a.sub(al, 8); a.aas(); a.mov(__word_ptr[Out + 4], ax); a.setc(__byte_ptr[Out + 6]);  // 13-8 = 5
            a.mov(ax, 0x0005); a.add(al, 2); a.aaa(); a.mov(__word_ptr[Out + 8], ax); a.setc(__byte_ptr[Out + 10]); // no adjust
            a.mov(ax, 0x003F); a.aam(10); a.mov(__word_ptr[Out + 12], ax);                                          // 63 → 06 03
            a.aad(10); a.mov(__word_ptr[Out + 14], ax);                                                              // back to 63
            a.mov(ax, 0x00FF); a.aam(16); a.mov(__word_ptr[Out + 16], ax);                                           // base 16: 0F 0F
            a.mov(ax, 0x0102); a.aad(7); a.mov(__word_ptr[Out + 18], ax);                                            // 1*7+2 = 9
            a.hlt();
        });
        var m = g.G.Memory;
        Assert.Equal(0x0104, m.Read<ushort>(Out)); Assert.Equal(1, m.Read<byte>(Out + 2));
        Assert.Equal(0x0005, m.Read<ushort>(Out + 4)); Assert.Equal(1, m.Read<byte>(Out + 6));
        Assert.Equal(0x0007, m.Read<ushort>(Out + 8)); Assert.Equal(0, m.Read<byte>(Out + 10));
        Assert.Equal(0x0603, m.Read<ushort>(Out + 12));
        Assert.Equal(0x003F, m.Read<ushort>(Out + 14));
        Assert.Equal(0x0F0F, m.Read<ushort>(Out + 16));
        Assert.Equal(0x0009, m.Read<ushort>(Out + 18));
        Assert.Equal(uint.MaxValue, g.Vector); // no exception
        Assert.Equal(Guest32.Code, s.Rip & ~0xFFFUL);
    }

    [Fact]
    public void Aam_zero_raises_divide_error_at_the_instruction()
    {
        using var g = new Guest32();
        var s = g.Run(a =>
        {
            a.xor(ecx, ecx);
            a.mov(eax, 0x1234);
            a.aam(0);
            a.mov(ecx, 1);
            a.hlt();
        });
        Assert.Equal(0u, g.Vector);
        Assert.Equal(0xD4, g.G.Memory.Read<byte>(g.Eip)); // EIP of the AAM itself
        Assert.Equal(0UL, s[Gpr.Rcx]);
    }

    [Fact]
    public void Bound_passes_inside_and_raises_br_outside()
    {
        using var g = new Guest32();
        g.G.Memory.Write(Out, -5);
        g.G.Memory.Write(Out + 4, 100);
        var s = g.Run(a =>
        {
            a.mov(eax, -5);
            a.bound(eax, __qword_ptr[Out]);
            a.mov(eax, 100);
            a.bound(eax, __qword_ptr[Out]);
            a.mov(ecx, 1);
            a.mov(eax, 101);
            a.bound(eax, __qword_ptr[Out]);
            a.mov(ecx, 2);
            a.hlt();
        });
        Assert.Equal(5u, g.Vector);
        Assert.Equal(0x62, g.G.Memory.Read<byte>(g.Eip)); // a fault: EIP of the BOUND
        Assert.Equal(1UL, s[Gpr.Rcx]);
    }

    [Fact]
    public void Arpl_raises_rpl_and_reports_in_zf()
    {
        using var g = new Guest32();
        g.G.Memory.Write(Out + 8, (ushort)0x20);
        g.Run(a =>
        {
            a.mov(ax, 0x10);
            a.mov(cx, 0x23);
            a.arpl(ax, cx);
            a.mov(__word_ptr[Out], ax);
            a.setz(__byte_ptr[Out + 2]);
            a.arpl(ax, cx);                       // already RPL 3: unchanged, ZF = 0
            a.setz(__byte_ptr[Out + 3]);
            a.mov(dx, 0x1A);                       // RPL 2
            a.arpl(__word_ptr[Out + 8], dx);
            a.setz(__byte_ptr[Out + 4]);
            a.hlt();
        });
        var m = g.G.Memory;
        Assert.Equal(0x13, m.Read<ushort>(Out));
        Assert.Equal(1, m.Read<byte>(Out + 2));
        Assert.Equal(0, m.Read<byte>(Out + 3));
        Assert.Equal(0x22, m.Read<ushort>(Out + 8));
        Assert.Equal(1, m.Read<byte>(Out + 4));
    }

    [Fact]
    public void Into_traps_only_on_overflow_with_the_next_eip()
    {
        using var g = new Guest32();
        var s = g.Run(a =>
        {
            a.mov(al, 0x10);
            a.add(al, 1);
            a.into();                               // OF clear: nothing
            a.mov(ecx, 1);
            a.mov(al, 0x7F);
            a.add(al, 1);                           // OF set
            a.into();
            a.mov(ecx, 2);
            a.hlt();
        });
        Assert.Equal(4u, g.Vector);
        Assert.Equal(0xCE, g.G.Memory.Read<byte>(g.Eip - 1)); // a trap: EIP after the INTO
        Assert.Equal(1UL, s[Gpr.Rcx]);
    }

    [Fact]
    public void Salc_copies_carry_into_al()
    {
        using var g = new Guest32();
        var s = g.Run(a =>
        {
            a.stc();
            a.db(0xD6);                             // SALC
            a.mov(bl, al);
            a.clc();
            a.db(0xD6);
            a.hlt();
        });
        Assert.Equal(0xFFUL, s[Gpr.Rbx] & 0xFF);
        Assert.Equal(0UL, s[Gpr.Rax] & 0xFF);
    }
}
