using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// An instruction whose bytes run from one page into the next is cached as a block of its own, registered under
/// both physical pages: a write to either page, or a new mapping of the second, must be seen on its next run.
/// </summary>
public class PageStraddlingCodeTests
{
    // mov eax, imm32 (B8 + 4 bytes) at 0x30FFD: the opcode and imm bytes 0-1 on one page, bytes 2-3 on the next.
    private const ulong Fn = 0x30FFD, SecondPage = 0x31000, OtherPhys = 0x41000;

    private static void WriteFunction(TestGuest g, ulong at, uint imm)
    {
        g.Memory.Write(at, new byte[] { 0xB8, (byte)imm, (byte)(imm >> 8), (byte)(imm >> 16), (byte)(imm >> 24), 0xC3 });
    }

    [Fact]
    public void A_straddling_instruction_in_a_loop_sees_a_guest_write_to_its_second_page()
    {
        using var g = new TestGuest();
        WriteFunction(g, Fn, 0x0000_0001);
        g.Load64(a =>
        {
            var loop = a.CreateLabel();
            a.mov(rsi, Fn);
            a.xor(r8, r8);
            a.mov(ecx, 100);
            a.Label(ref loop);
            a.push(rcx);
            a.call(rsi);
            a.pop(rcx);
            a.add(r8, rax);
            a.dec(ecx);
            a.jnz(loop);
            a.mov(__byte_ptr[SecondPage], 0x05); // imm byte 2 lives on the second page
            a.call(rsi);
            a.mov(r9, rax);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(100UL, s[Gpr.R8]);
        Assert.Equal(0x0005_0001UL, s[Gpr.R9]);
    }

    [Fact]
    public void A_straddling_instruction_follows_a_new_mapping_of_its_second_page()
    {
        using var g = new TestGuest();
        WriteFunction(g, Fn, 0x1111_2222);
        // The same linear bytes 0x31000.. seen through another physical page: imm bytes 2-3 = 0x33, 0x44.
        g.Memory.Write(OtherPhys, new byte[] { 0x33, 0x44, 0xC3 });
        g.Load64(a =>
        {
            a.mov(rsi, Fn);
            a.call(rsi);
            a.mov(r8, rax);
            a.call(rsi);
            a.mov(r9, rax);
            a.mov(__qword_ptr[TestGuest.Pt + (SecondPage >> 12) * 8], (int)(OtherPhys | 0x7));
            a.invlpg(__[SecondPage]);
            a.call(rsi);
            a.mov(r10, rax);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x1111_2222UL, s[Gpr.R8]);
        Assert.Equal(0x1111_2222UL, s[Gpr.R9]);
        Assert.Equal(0x4433_2222UL, s[Gpr.R10]);
    }

    [Fact]
    public void A_vmm_write_to_the_second_page_invalidates_the_cached_instruction()
    {
        using var g = new TestGuest();
        WriteFunction(g, Fn, 0x0000_0007);
        g.Load64(a =>
        {
            a.mov(rsi, Fn);
            a.call(rsi);
            a.hlt();
        });
        Assert.Equal(7UL, g.RunToHalt()[Gpr.Rax]);
        g.Memory.Write(SecondPage, new byte[] { 0x09 });
        g.Cpu.SetState(TestGuest.LongModeState(TestGuest.CodeBase));
        Assert.Equal(0x0009_0007UL, g.RunToHalt()[Gpr.Rax]);
    }

    [Fact]
    public void A_straddling_instruction_whose_second_page_is_not_present_faults_with_that_address()
    {
        using var g = new TestGuest();
        WriteFunction(g, Fn, 1);
        g.Load64(a =>
        {
            a.mov(__qword_ptr[TestGuest.Pt + (SecondPage >> 12) * 8], 0);
            a.invlpg(__[SecondPage]);
            a.mov(rsi, Fn);
            a.call(rsi);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(Fn, g.LoggedRip);
        Assert.Equal(SecondPage, g.Cpu.GetState().Cr2);
        Assert.Equal(0x10UL, g.LoggedError & 0x10); // instruction fetch
    }
}
