using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// The CPU features the model advertises beyond the baseline, each shown working: SMEP, UMIP, PCID with INVPCID,
/// RDPID, CLFLUSHOPT/CLWB and the TSC-deadline bit (the timer itself is tested with the local APIC).
/// </summary>
public class CpuModelFeatureTests
{
    private const uint Cr4Umip = 1u << 11, Cr4Pcide = 1u << 17, Cr4Smep = 1u << 20;

    private static (uint A, uint B, uint C, uint D) Cpuid(TestGuest g, uint leaf, uint sub = 0)
    {
        g.Load64(a =>
        {
            a.mov(eax, leaf);
            a.mov(ecx, sub);
            a.cpuid();
            a.hlt();
        });
        var s = g.RunToHalt();
        return ((uint)s[Gpr.Rax], (uint)s[Gpr.Rbx], (uint)s[Gpr.Rcx], (uint)s[Gpr.Rdx]);
    }

    [Fact]
    public void Cpuid_advertises_exactly_the_implemented_features()
    {
        using var g = new TestGuest();
        var l1 = Cpuid(g, 1);
        Assert.NotEqual(0u, l1.C & (1u << 17));   // PCID
        Assert.Equal(0u, l1.C & (1u << 24));      // TSC-deadline: no local APIC in this guest
        Assert.Equal(0u, l1.C & (1u << 21));      // x2APIC: no local APIC in this guest
        Assert.NotEqual(0u, l1.C & (1u << 26));   // XSAVE (XsaveTests)
        Assert.Equal(0u, l1.C & (1u << 27));      // OSXSAVE: CR4.OSXSAVE is off
        var l7 = Cpuid(g, 7);
        foreach (int bit in new[] { 3, 7, 10, 23, 24 }) Assert.True((l7.B & (1u << bit)) != 0, $"leaf 7 EBX bit {bit}");
        Assert.NotEqual(0u, l7.B & (1u << 20));   // SMAP (SmapTests)
        Assert.NotEqual(0u, l7.C & (1u << 2));    // UMIP
        Assert.NotEqual(0u, l7.C & (1u << 22));   // RDPID
        Assert.NotEqual(0u, l7.C & (1u << 3));    // PKU (PkuTests)
    }

    [Fact]
    public void Tsc_deadline_and_x2apic_are_advertised_with_a_local_apic()
    {
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = i => new FakeLocalApic(i) });
        var l1 = Cpuid(g, 1);
        Assert.NotEqual(0u, l1.C & (1u << 24));
        Assert.NotEqual(0u, l1.C & (1u << 21));   // x2APIC mode itself: LocalApicX2ApicTests, X2ApicGuestTests
    }

    [Fact]
    public void Rdpid_reads_tsc_aux()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(ecx, 0xC0000103);
            a.mov(eax, 0x1234_0005);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(rbx, -1L);
            a.rdpid(rbx);
            a.hlt();
        });
        Assert.Equal(0x1234_0005UL, g.RunToHalt()[Gpr.Rbx]);
    }

    [Fact]
    public void Clflushopt_and_clwb_run_on_mapped_memory_and_fault_like_a_read_on_unmapped_memory()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(rax, 0x5000);
            a.clflushopt(__byte_ptr[rax]);
            a.clwb(__byte_ptr[rax + 64]);
            a.mov(r8, 1);
            a.mov(rax, 0x40_0000_0000L);          // beyond the identity map (1 GiB)
            a.clwb(__byte_ptr[rax]);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R8]);
        Assert.Equal(14UL, g.LoggedVector);
    }

    [Fact]
    public void Umip_makes_sgdt_sidt_sldt_str_and_smsw_privileged_outside_ring_0()
    {
        foreach (var insn in new Action<Assembler>[]
        {
            a => a.sgdt(__[rsp - 16]),
            a => a.sidt(__[rsp - 16]),
            a => a.sldt(ax),
            a => a.str(ax),
            a => a.smsw(ax),
        })
        {
            using var g = new TestGuest();
            // CR4.UMIP from ring 0, then to ring 3 through IRETQ and run the instruction there.
            g.Load64(a =>
            {
                a.mov(rax, cr4);
                a.or(rax, (int)Cr4Umip);
                a.mov(cr4, rax);
                var user = a.CreateLabel();
                a.push(TestGuest.UserDs);
                a.push((int)TestGuest.UserStackTop);
                a.push(0x2);
                a.push(TestGuest.UserCs);
                a.lea(rax, __[user]);
                a.push(rax);
                a.iretq();
                a.Label(ref user);
                insn(a);
                a.mov(r9, 1);
                a.ud2();
            });
            var s = g.RunToHalt();
            Assert.Equal(13UL, g.LoggedVector);
            Assert.Equal(0UL, s[Gpr.R9]);
            Assert.Equal((ulong)TestGuest.UserCs, g.LoggedCs);
        }
    }

    [Fact]
    public void Without_umip_user_mode_may_store_the_gdtr_and_ring_0_always_may()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(rax, cr4);
            a.or(rax, (int)Cr4Umip);
            a.mov(cr4, rax);
            a.sgdt(__[rsp - 16]);                 // ring 0 with UMIP: allowed
            a.mov(r9, 1);
            a.hlt();
        });
        Assert.Equal(1UL, g.RunToHalt()[Gpr.R9]);
        using var u = new TestGuest();
        u.Load64(a =>
        {
            a.smsw(ax);
            a.mov(r9, 2);
            a.ud2();
        }, user: true);
        u.RunToHalt();
        Assert.Equal(6UL, u.LoggedVector);
        Assert.Equal(2UL, u.Cpu.GetState()[Gpr.R9]);
    }

    /// <summary>All 4 KiB pages of the first 2 MiB supervisor-only, except <paramref name="userPage"/>.</summary>
    private static void SupervisorPagesExcept(TestGuest g, ulong userPage)
    {
        for (ulong i = 0; i < 512; i++)
            g.Memory.Write(TestGuest.Pt + i * 8, (i << 12) | ((i << 12) == userPage ? 0x7UL : 0x3UL));
    }

    [Fact]
    public void Smep_faults_a_kernel_fetch_from_a_user_page_with_an_instruction_fetch_error_code()
    {
        using var g = new TestGuest();
        const ulong userCode = 0x40000;
        SupervisorPagesExcept(g, userCode);
        g.Memory.Write(userCode, (byte)0xC3); // RET
        g.Load64(a =>
        {
            a.mov(rax, userCode);
            a.call(rax);                          // SMEP off: runs the RET
            a.mov(r8, 1);
            a.mov(rax, cr4);
            a.or(rax, (int)Cr4Smep);
            a.mov(cr4, rax);
            a.mov(rax, userCode);
            a.call(rax);                          // SMEP on: #PF on the fetch
            a.mov(r9, 1);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R8]);
        Assert.Equal(0UL, s[Gpr.R9]);
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x11UL, g.LoggedError);      // present | instruction fetch, supervisor
        Assert.Equal(userCode, g.LoggedRip);
        Assert.Equal(userCode, s.Cr2);
    }

    [Fact]
    public void Pcid_lives_in_cr3_and_invpcid_drops_a_stale_translation()
    {
        using var g = new TestGuest();
        const ulong page = 0x50000, other = 0x51000, desc = 0x9800;
        g.Memory.Write(page, 0x1111UL);
        g.Memory.Write(other, 0x2222UL);
        g.Memory.Write(desc, 0UL);                // PCID 0
        g.Memory.Write(desc + 8, page);           // linear address
        g.Load64(a =>
        {
            a.mov(rax, cr4);
            a.or(rax, (int)Cr4Pcide);
            a.mov(cr4, rax);
            a.mov(rax, TestGuest.Pml4 | 5 | (1UL << 63)); // PCID 5, keep its TLB entries
            a.mov(cr3, rax);
            a.mov(rbx, cr3);
            a.mov(r8, __qword_ptr[page]);         // caches the translation
            a.mov(rax, TestGuest.Pt + (page >> 12) * 8);
            a.mov(__qword_ptr[rax], (int)(other | 3)); // remap the page without telling the TLB
            a.mov(rax, 0);
            a.invpcid(rax, __[desc]);             // type 0: this address
            a.mov(r9, __qword_ptr[page]);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(TestGuest.Pml4 | 5, s[Gpr.Rbx]);    // bit 63 is not stored
        Assert.Equal(0x1111UL, s[Gpr.R8]);
        Assert.Equal(0x2222UL, s[Gpr.R9]);
        Assert.NotEqual(0UL, s.Cr4 & Cr4Pcide);
    }

    [Fact]
    public void Pcide_needs_pcid_0_in_cr3_and_invpcid_checks_its_type_and_privilege()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(rax, TestGuest.Pml4 | 1);
            a.mov(cr3, rax);
            a.mov(rax, cr4);
            a.or(rax, (int)Cr4Pcide);
            a.mov(cr4, rax);                      // #GP: CR3 holds PCID 1
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(13UL, g.LoggedVector);

        using var t = new TestGuest();
        t.Memory.Write(0x9800UL, 0UL);
        t.Memory.Write(0x9808UL, 0UL);
        t.Load64(a =>
        {
            a.mov(rax, 4);
            a.invpcid(rax, __[0x9800]);           // type 4 does not exist
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(13UL, t.LoggedVector);

        using var u = new TestGuest();
        u.Load64(a =>
        {
            a.mov(rax, 2);
            a.invpcid(rax, __[0x9800]);
            a.hlt();
        }, user: true);
        u.RunToHalt();
        Assert.Equal(13UL, u.LoggedVector);
    }
}
