using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class ExceptionTests
{
    [Fact]
    public void Divide_by_zero_delivers_DE_with_the_faulting_rip()
    {
        using var g = new TestGuest();
        ulong faultRip = 0;
        g.Load64(a =>
        {
            a.mov(eax, 10);
            a.xor(ecx, ecx);
            var l = a.CreateLabel();
            a.Label(ref l);
            a.div(ecx);
            a.hlt();
        });
        faultRip = TestGuest.CodeBase + 5 + 2;
        g.RunToHalt();
        Assert.Equal(0UL, g.LoggedVector);
        Assert.Equal(faultRip, g.LoggedRip);
        Assert.Equal((ulong)TestGuest.KernelCs, g.LoggedCs);
        Assert.Equal(1UL, g.ExceptionCount);
    }

    [Fact]
    public void Page_fault_on_not_present_page_reports_cr2_and_error_code()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0UL); // unmap 0x50000
        g.Load64(a =>
        {
            a.mov(rbx, 0x50008);
            a.mov(__qword_ptr[rbx], rax);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(2UL, g.LoggedError); // not present, write, supervisor
        Assert.Equal(0x50008UL, s.Cr2);
    }

    [Fact]
    public void Page_fault_on_read_only_page_only_with_cr0_wp()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0x50000UL | 0x5); // present, user, read-only
        g.Load64(a =>
        {
            a.mov(rbx, 0x50000);
            a.mov(__dword_ptr[rbx], 7);   // CR0.WP=1 in the test state: faults
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(3UL, g.LoggedError); // protection, write, supervisor

        using var g2 = new TestGuest();
        g2.Memory.Write(TestGuest.Pt + 0x50 * 8, 0x50000UL | 0x5);
        g2.Load64(a =>
        {
            a.mov(rax, cr0);
            a.and(eax, ~0x10000);
            a.mov(cr0, rax);
            a.mov(rbx, 0x50000);
            a.mov(__dword_ptr[rbx], 7);
            a.hlt();
        });
        g2.RunToHalt();
        Assert.Equal(0UL, g2.ExceptionCount);
        Assert.Equal(7u, g2.Memory.Read<uint>(0x50000));
    }

    [Fact]
    public void Accessed_and_dirty_bits_are_set_by_the_walk()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0x50000UL | 0x7);
        g.Memory.Write(TestGuest.Pt + 0x51 * 8, 0x51000UL | 0x7);
        g.Load64(a =>
        {
            a.mov(rax, __qword_ptr[0x50000]);
            a.mov(__qword_ptr[0x51000], rax);
            a.hlt();
        });
        g.RunToHalt();
        ulong pte50 = g.Memory.Read<ulong>(TestGuest.Pt + 0x50 * 8), pte51 = g.Memory.Read<ulong>(TestGuest.Pt + 0x51 * 8);
        Assert.Equal(0x20UL, pte50 & 0x60);  // accessed, not dirty
        Assert.Equal(0x60UL, pte51 & 0x60);  // accessed and dirty
    }

    [Fact]
    public void Nx_page_faults_on_fetch_with_instruction_fetch_bit()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0x50000UL | 0x7 | (1UL << 63));
        g.Memory.Write(0x50000UL, (byte)0xF4);
        g.Load64(a =>
        {
            a.mov(eax, 0x50000);
            a.jmp(rax);
        });
        var s = g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x11UL, g.LoggedError); // protection + instruction fetch
        Assert.Equal(0x50000UL, s.Cr2);
        Assert.Equal(0x50000UL, g.LoggedRip);
    }

    [Fact]
    public void User_mode_access_to_supervisor_page_faults_with_user_bit()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0x50000UL | 0x3); // supervisor-only
        g.Load64(a =>
        {
            a.mov(rax, __qword_ptr[0x50000]);
            a.hlt();
        }, user: true);
        g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(5UL, g.LoggedError); // protection, read, user
        Assert.Equal((ulong)TestGuest.UserCs, g.LoggedCs);
        // The handler ran on RSP0 from the TSS: the frame sits just below StackTop.
        Assert.Equal(TestGuest.StackTop - 40, g.LoggedRsp);
    }

    [Fact]
    public void Hlt_in_user_mode_is_a_general_protection_fault()
    {
        using var g = new TestGuest();
        g.Load64(a => a.hlt(), user: true);
        g.RunToHalt();
        Assert.Equal(13UL, g.LoggedVector);
        Assert.Equal(0UL, g.LoggedError);
    }

    [Fact]
    public void Ist_entry_switches_stack()
    {
        using var g = new TestGuest();
        // Give vector 3 (INT3) IST1.
        ulong gate = g.Memory.Read<ulong>(TestGuest.IdtBase + 3 * 16);
        g.Memory.Write(TestGuest.IdtBase + 3 * 16, gate | (1UL << 32));
        g.Load64(a =>
        {
            a.int3();
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(3UL, g.LoggedVector);
        Assert.Equal(TestGuest.CodeBase + 1, g.LoggedRip); // INT3 is a trap: return address after it
        Assert.Equal(TestGuest.IstStackTop - 40, g.LoggedRsp);
    }

    [Fact]
    public void Undefined_opcode_raises_UD()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.nop();
            a.ud2();
        });
        g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(TestGuest.CodeBase + 1, g.LoggedRip);
    }

    [Fact]
    public void Unimplemented_instruction_raises_UD_like_a_cpu_without_the_feature()
    {
        using var g = new TestGuest();
        g.Load64(a => a.vzeroupper()); // AVX is neither advertised nor implemented
        g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);
    }

    [Fact]
    public void Fault_while_delivering_a_page_fault_becomes_a_double_fault()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0UL);
        // Make the #PF gate not present: delivering #PF raises #NP (contributory) → #DF.
        ulong gate = g.Memory.Read<ulong>(TestGuest.IdtBase + 14 * 16);
        g.Memory.Write(TestGuest.IdtBase + 14 * 16, gate & ~(1UL << 47));
        g.Load64(a =>
        {
            a.mov(rax, __qword_ptr[0x50000]);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(8UL, g.LoggedVector);
        Assert.Equal(0UL, g.LoggedError);
    }

    [Fact]
    public void Triple_fault_shuts_down()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.xor(eax, eax);
            a.push(rax);
            a.push(rax);
            a.lidt(__[rsp]); // empty IDT: every exception escalates
            a.ud2();
        });
        var exit = g.Cpu.Run();
        Assert.Equal(VcpuExitReason.Shutdown, exit.Reason);
    }
}
