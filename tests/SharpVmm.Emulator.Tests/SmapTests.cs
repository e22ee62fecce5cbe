using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// SMAP: with CR4.SMAP the kernel faults on user pages' data unless STAC set RFLAGS.AC; CLAC or any RFLAGS load
/// that clears AC closes the window again, including for translations cached while it was open.
/// </summary>
public class SmapTests
{
    private const uint Cr4Smap = 1u << 21;
    private const ulong UserData = 0x40000;

    /// <summary>Every 4 KiB page of the first 2 MiB supervisor-only except <see cref="UserData"/>.</summary>
    private static TestGuest Guest()
    {
        var g = new TestGuest();
        for (ulong i = 0; i < 512; i++)
            g.Memory.Write(TestGuest.Pt + i * 8, (i << 12) | ((i << 12) == UserData ? 0x7UL : 0x3UL));
        g.Memory.Write(UserData, 0x5A5AUL);
        return g;
    }

    private static void EnableSmap(Iced.Intel.Assembler a)
    {
        a.mov(rax, cr4);
        a.or(eax, (int)Cr4Smap);
        a.mov(cr4, rax);
    }

    [Fact]
    public void A_kernel_read_of_a_user_page_faults_until_stac_and_again_after_clac()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            a.mov(r8, __qword_ptr[UserData]);     // SMAP off: fine
            EnableSmap(a);
            a.stac();
            a.mov(r9, __qword_ptr[UserData]);     // window open: fine (and cached in the TLB)
            a.mov(__qword_ptr[UserData + 8], r9); // writes too
            a.clac();
            a.mov(r10, 1);
            a.mov(r11, __qword_ptr[UserData]);    // window closed: #PF although the TLB held the page
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x5A5AUL, s[Gpr.R8]);
        Assert.Equal(0x5A5AUL, s[Gpr.R9]);
        Assert.Equal(0x5A5AUL, g.Memory.Read<ulong>(UserData + 8));
        Assert.Equal(1UL, s[Gpr.R10]);
        Assert.Equal(0UL, s[Gpr.R11]);
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(1UL, g.LoggedError);         // present, read, supervisor
        Assert.Equal(UserData, s.Cr2);
    }

    [Fact]
    public void Reopening_the_window_brings_back_only_translations_no_flush_has_dropped()
    {
        using var g = Guest();
        const ulong other = 0x41000;
        g.Memory.Write(other, 0x7777UL);
        g.Load64(a =>
        {
            EnableSmap(a);
            a.stac();
            a.mov(r8, __qword_ptr[UserData]);         // cached, then parked at CLAC
            a.clac();
            a.stac();
            a.mov(r9, __qword_ptr[UserData]);         // back from the parking
            a.clac();
            a.mov(rax, TestGuest.Pt + (UserData >> 12) * 8);
            a.mov(__qword_ptr[rax], (int)(other | 7)); // remap the user page ...
            a.mov(rbx, UserData);
            a.invlpg(__byte_ptr[rbx]);                 // ... and say so: the parked entry is stale now
            a.stac();
            a.mov(r10, __qword_ptr[UserData]);
            a.clac();
            a.mov(r12, 1);
            a.mov(r11, __qword_ptr[UserData]);        // closed again: #PF
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x5A5AUL, s[Gpr.R8]);
        Assert.Equal(0x5A5AUL, s[Gpr.R9]);
        Assert.Equal(0x7777UL, s[Gpr.R10]);
        Assert.Equal(1UL, s[Gpr.R12]);
        Assert.Equal(0UL, s[Gpr.R11]);
        Assert.Equal(14UL, g.LoggedVector);
    }

    [Fact]
    public void Popf_clearing_ac_closes_the_window_and_writes_fault_with_the_write_bit()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnableSmap(a);
            a.stac();
            a.mov(__qword_ptr[UserData + 16], rax);   // cached write entry
            a.pushfq();
            a.and(__qword_ptr[rsp], ~(1 << 18));
            a.popfq();                                // AC = 0
            a.mov(r10, 1);
            a.mov(__qword_ptr[UserData + 16], rax);   // #PF, write
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R10]);
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(3UL, g.LoggedError);             // present, write, supervisor
    }

    [Fact]
    public void Supervisor_pages_and_user_mode_are_unaffected_and_stac_is_privileged()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnableSmap(a);
            a.mov(r8, __qword_ptr[TestGuest.GdtBase + 8]); // a supervisor page: fine with AC = 0
            a.mov(r9, 1);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R9]);
        Assert.NotEqual(0UL, s[Gpr.R8]);

        using var u = new TestGuest();
        u.Load64(a =>
        {
            a.mov(r8, __qword_ptr[UserData]);   // user mode reads its own page
            a.stac();                           // #UD at CPL 3
            a.hlt();
        }, user: true);
        u.RunToHalt();
        Assert.Equal(6UL, u.LoggedVector);
    }

    [Fact]
    public void Smap_is_advertised_in_cpuid_leaf_7()
    {
        using var g = new TestGuest();
        g.Load64(a => { a.mov(eax, 7); a.xor(ecx, ecx); a.cpuid(); a.hlt(); });
        Assert.NotEqual(0UL, g.RunToHalt()[Gpr.Rbx] & (1UL << 20));
    }
}
