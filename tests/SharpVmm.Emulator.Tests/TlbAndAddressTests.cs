using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>Global pages across CR3 writes, CR4.PGE and INVLPG; non-canonical addresses in 64-bit mode.</summary>
public class TlbAndAddressTests
{
    [Fact]
    public void Global_pages_survive_cr3_writes_until_pge_toggles_or_invlpg()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x50000UL, 0x1111UL);
        g.Memory.Write(0x51000UL, 0x2222UL);
        g.Memory.Write(0x52000UL, 0x3333UL);
        g.Memory.Write(0x53000UL, 0x4444UL);
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0x50107UL); // global
        g.Load64(a =>
        {
            a.mov(rax, cr4);
            a.or(rax, 0x80);                                   // PGE
            a.mov(cr4, rax);
            a.mov(r8, __qword_ptr[0x50000]);                   // global translation cached
            a.mov(r12, __qword_ptr[0x52000]);                  // non-global translation cached
            a.mov(__qword_ptr[TestGuest.Pt + 0x50 * 8], 0x51107);
            a.mov(__qword_ptr[TestGuest.Pt + 0x52 * 8], 0x53007);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(r9, __qword_ptr[0x50000]);                   // global: the old translation survives
            a.mov(r13, __qword_ptr[0x52000]);                  // non-global: walked again
            a.mov(rax, cr4);
            a.and(rax, ~0x80);
            a.mov(cr4, rax);                                   // PGE off: everything goes
            a.or(rax, 0x80);
            a.mov(cr4, rax);
            a.mov(r10, __qword_ptr[0x50000]);
            a.mov(__qword_ptr[TestGuest.Pt + 0x50 * 8], 0x50107);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(r14, __qword_ptr[0x50000]);                  // still the global 0x51000 translation
            a.invlpg(__[0x50000]);
            a.mov(r11, __qword_ptr[0x50000]);                  // INVLPG drops global entries too
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x1111UL, s[Gpr.R8]);
        Assert.Equal(0x3333UL, s[Gpr.R12]);
        Assert.Equal(0x1111UL, s[Gpr.R9]);
        Assert.Equal(0x4444UL, s[Gpr.R13]);
        Assert.Equal(0x2222UL, s[Gpr.R10]);
        Assert.Equal(0x2222UL, s[Gpr.R14]);
        Assert.Equal(0x1111UL, s[Gpr.R11]);
    }

    [Fact]
    public void Global_bit_is_ignored_without_cr4_pge()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x50000UL, 0x1111UL);
        g.Memory.Write(0x51000UL, 0x2222UL);
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0x50107UL);
        g.Load64(a =>
        {
            a.mov(r8, __qword_ptr[0x50000]);
            a.mov(__qword_ptr[TestGuest.Pt + 0x50 * 8], 0x51107);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(r9, __qword_ptr[0x50000]);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x1111UL, s[Gpr.R8]);
        Assert.Equal(0x2222UL, s[Gpr.R9]);
    }

    private const ulong NonCanonical = 0x0000_8000_0000_1000;

    /// <summary>Runs <paramref name="code"/> at CPL 0 and returns the state at the exception stub's HLT.</summary>
    private static (ulong Vector, ulong Error, ulong Rip, ulong FrameRsp, VcpuState State) RunToException(Action<Iced.Intel.Assembler> code, bool istForSs = false)
    {
        using var g = new TestGuest();
        if (istForSs)
        {
            ulong gate = g.Memory.Read<ulong>(TestGuest.IdtBase + 12 * 16);
            g.Memory.Write(TestGuest.IdtBase + 12 * 16, gate | (1UL << 32)); // #SS on IST1
        }
        g.Load64(code);
        var s = g.RunToHalt();
        ulong frameRsp = g.Memory.Read<ulong>(g.LoggedRsp + 24); // the interrupted RSP in the handler's frame
        return (g.LoggedVector, g.LoggedError, g.LoggedRip, frameRsp, s);
    }

    [Fact]
    public void Non_canonical_data_access_is_gp_and_stack_access_is_ss()
    {
        // A load through a non-canonical address: #GP(0) at the load.
        var r = RunToException(a =>
        {
            a.mov(rax, NonCanonical);
            a.mov(rbx, __qword_ptr[rax]);
            a.hlt();
        });
        Assert.Equal(13UL, r.Vector);
        Assert.Equal(0UL, r.Error);
        Assert.Equal(TestGuest.CodeBase + 10, r.Rip);

        // A store through RBP (SS is the default segment): #SS(0).
        r = RunToException(a =>
        {
            a.mov(rbp, NonCanonical);
            a.mov(__qword_ptr[rbp + 8], rbx);
            a.hlt();
        });
        Assert.Equal(12UL, r.Vector);
        Assert.Equal(0UL, r.Error);

        // PUSH with a non-canonical RSP: #SS(0), delivered on IST1, RSP untouched.
        r = RunToException(a =>
        {
            a.mov(rsp, NonCanonical);
            a.push(rbx);
            a.hlt();
        }, istForSs: true);
        Assert.Equal(12UL, r.Vector);
        Assert.Equal(TestGuest.CodeBase + 10, r.Rip);
    }

    [Fact]
    public void Non_canonical_branch_targets_fault_on_the_branch()
    {
        var r = RunToException(a =>
        {
            a.mov(rax, NonCanonical);
            a.jmp(rax);
            a.hlt();
        });
        Assert.Equal(13UL, r.Vector);
        Assert.Equal(TestGuest.CodeBase + 10, r.Rip); // the JMP, not the target

        r = RunToException(a =>
        {
            a.mov(rax, NonCanonical);
            a.push(rax);
            a.mov(r8, rsp);
            a.ret();
            a.hlt();
        });
        Assert.Equal(13UL, r.Vector);
        Assert.Equal(TestGuest.CodeBase + 14, r.Rip);
        Assert.Equal(r.State[Gpr.R8], r.FrameRsp); // RSP as it was before the RET
    }

    [Fact]
    public void Non_canonical_fs_base_is_refused()
    {
        var r = RunToException(a =>
        {
            a.mov(ecx, 0xC0000100);
            a.mov(eax, 0);
            a.mov(edx, 0x8000);
            a.wrmsr();
            a.hlt();
        });
        Assert.Equal(13UL, r.Vector);
    }

    [Fact]
    public void Reserved_bits_in_paging_entries_raise_page_faults_with_rsvd()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0x50007UL | (1UL << 45));   // above MAXPHYADDR (40)
        g.Load64(a =>
        {
            a.mov(rax, __qword_ptr[0x50000]);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x9UL, g.LoggedError);                 // P | RSVD, supervisor read

        using var g2 = new TestGuest();
        g2.Memory.Write(TestGuest.Pd + 8, 0x200087UL | 0x2000);              // 2 MiB page with bit 13 set
        g2.Load64(a =>
        {
            a.mov(__qword_ptr[0x200010], rax);
            a.hlt();
        });
        g2.RunToHalt();
        Assert.Equal(14UL, g2.LoggedVector);
        Assert.Equal(0xBUL, g2.LoggedError);                // P | W | RSVD
        Assert.Equal(0x200010UL, g2.Cpu.GetState().Cr2);
    }

    [Fact]
    public void One_gib_pages_are_advertised_and_translate()
    {
        using var g = new TestGuest();
        const ulong pdpt1 = 0x38000;
        g.Memory.Write(TestGuest.Pml4 + 8, pdpt1 | 7UL);                     // 512 GiB slot 1
        g.Memory.Write(pdpt1, 0x87UL);                                        // 1 GiB page at 0x80_0000_0000 → 0
        g.Memory.Write(0x123458UL, 0xABCDUL);
        g.Load64(a =>
        {
            a.mov(rax, 0x80_0012_3458UL);
            a.mov(r8, __qword_ptr[rax]);
            a.mov(eax, 0x80000001);
            a.cpuid();
            a.mov(r9d, edx);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0xABCDUL, s[Gpr.R8]);
        Assert.NotEqual(0UL, s[Gpr.R9] & (1UL << 26));
    }
}

/// <summary>
/// Code fetch through the jump caches across CR3 writes: code on a remapped non-global page runs new after the CR3
/// write; code on a global page may keep running from the old mapping (as its TLB entry survives; ours does) until
/// INVLPG, after which the new code runs.
/// </summary>
public class CodeRemapAcrossCr3Tests
{
    // 0x3F000 shares no jump-cache slot with the caller's blocks at 0x10000, so only a flush can drop its entry.
    private const ulong Code = 0x3F000, OldPage = 0x3F000, NewPage = 0x3E000;

    private static (ulong First, ulong AfterCr3, ulong AfterInvlpg) Run(bool global, JitMode mode)
    {
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        ulong flags = global ? 0x107UL : 0x7UL;
        foreach (var (page, value) in new[] { (OldPage, 1), (NewPage, 2) })
        {
            var f = new Iced.Intel.Assembler(64);
            f.mov(eax, value);
            f.ret();
            g.Memory.Write(page, TestGuest.Assemble(f, Code));
        }
        g.Memory.Write(TestGuest.Pt + (Code >> 12) * 8, OldPage | flags);
        g.Load64(a =>
        {
            a.mov(rax, cr4);
            a.or(rax, 0x80); // PGE
            a.mov(cr4, rax);
            for (int i = 0; i < 4; i++) a.call(Code); // hot: translated, in every jump cache
            a.mov(r8d, eax);
            a.mov(__qword_ptr[TestGuest.Pt + (Code >> 12) * 8], (int)(NewPage | flags));
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.call(Code);
            a.mov(r9d, eax);
            a.invlpg(__[Code]);
            a.call(Code);
            a.mov(r10d, eax);
            a.hlt();
        });
        var s = g.RunToHalt();
        return (s[Gpr.R8], s[Gpr.R9], s[Gpr.R10]);
    }

    [Theory]
    [InlineData(JitMode.Off)]
    [InlineData(JitMode.Forced)]
    [InlineData(JitMode.On)]
    public void A_non_global_code_page_remapped_runs_its_new_code_after_a_cr3_write(JitMode mode)
    {
        var r = Run(global: false, mode);
        Assert.Equal((1UL, 2UL, 2UL), r);
    }

    [Theory]
    [InlineData(JitMode.Off)]
    [InlineData(JitMode.Forced)]
    [InlineData(JitMode.On)]
    public void A_global_code_page_keeps_its_translation_across_cr3_writes_until_invlpg(JitMode mode)
    {
        var r = Run(global: true, mode);
        // The old code after the CR3 write is what the TLB (and so the jump caches) may keep for a global page;
        // ours does, which is what saves a boot its page walks.
        Assert.Equal((1UL, 1UL, 2UL), r);
    }
}
