using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// Directed tests for the system instructions of the CPU model that other tests do not reach: SYSENTER/SYSEXIT,
/// debug registers, MTRR/PAT storage, cache-control instructions, hidden RDRAND, RDTSCP's TSC_AUX, LDT loads,
/// SMSW/LMSW/CLTS, the MOV SS interrupt shadow and HLT that sleeps.
/// </summary>
public class SystemCoverageTests
{
    [Fact]
    public void Sysexit_to_user_and_sysenter_back_to_the_kernel()
    {
        using var g = new TestGuest();
        const ulong user = 0x11000, kernelEntry = 0x12000, kernelStack = 0x7F000;
        g.Memory.Write(user, TestGuest.Assemble(Asm(a =>
        {
            a.mov(r12, cs);
            a.mov(r15, ss);
            a.sysenter();
        }), user));
        g.Memory.Write(kernelEntry, TestGuest.Assemble(Asm(a =>
        {
            a.mov(r13, cs);
            a.mov(r14, rsp);
            a.hlt();
        }), kernelEntry));
        g.Load64(a =>
        {
            a.mov(ecx, 0x174); a.mov(eax, TestGuest.KernelCs); a.xor(edx, edx); a.wrmsr();        // SYSENTER_CS
            a.mov(ecx, 0x175); a.mov(eax, (uint)kernelStack); a.wrmsr();                           // SYSENTER_ESP
            a.mov(ecx, 0x176); a.mov(eax, (uint)kernelEntry); a.wrmsr();                           // SYSENTER_EIP
            a.mov(edx, (uint)user);
            a.mov(ecx, (uint)TestGuest.UserStackTop);
            a.sysexitq();
        });
        var s = g.RunToHalt();
        Assert.Equal((ulong)(TestGuest.KernelCs + 32 | 3), s[Gpr.R12]); // SYSEXIT (64-bit): CS = SYSENTER_CS + 32, RPL 3
        Assert.Equal((ulong)(TestGuest.KernelCs + 40 | 3), s[Gpr.R15]);
        Assert.Equal((ulong)TestGuest.KernelCs, s[Gpr.R13]);
        Assert.Equal(kernelStack, s[Gpr.R14]);
        Assert.Equal(0, s.Cs.Dpl);
        Assert.Equal(0UL, s.Rflags & 0x200);                              // SYSENTER clears IF
    }

    private static Iced.Intel.Assembler Asm(Action<Iced.Intel.Assembler> code)
    {
        var a = new Iced.Intel.Assembler(64);
        code(a);
        return a;
    }

    [Fact]
    public void Debug_registers_store_values_with_their_fixed_bits_and_dr4_dr5_alias_or_fault()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(rax, 0x1234_5678_9ABCUL);
            a.mov(dr0, rax);
            a.mov(r8, dr0);
            a.mov(rax, dr6);
            a.mov(r9, rax);
            a.xor(eax, eax);
            a.mov(dr7, rax);
            a.mov(r10, dr7);
            a.mov(r11, dr4);                        // CR4.DE clear: DR4 is DR6
            a.mov(rax, cr4);
            a.or(eax, 8);                           // CR4.DE
            a.mov(cr4, rax);
            a.mov(r12, 1);
            a.mov(rax, dr5);                        // now #UD
            a.mov(r12, 2);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x1234_5678_9ABCUL, s[Gpr.R8]);
        Assert.Equal(0xFFFF_0FF0UL, s[Gpr.R9]);
        Assert.Equal(0x400UL, s[Gpr.R10]);
        Assert.Equal(0xFFFF_0FF0UL, s[Gpr.R11]);
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(1UL, s[Gpr.R12]);
    }

    [Fact]
    public void Debug_register_access_from_user_mode_is_gp()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(rax, dr7);
            a.hlt();
        }, user: true);
        g.RunToHalt();
        Assert.Equal(13UL, g.LoggedVector);
    }

    [Fact]
    public void Mtrr_and_pat_msrs_are_stored_and_mtrrcap_is_read_only()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(ecx, 0x2FF); a.mov(eax, 0xC06); a.xor(edx, edx); a.wrmsr();       // MTRRdefType: enabled, WB
            a.mov(ecx, 0x200); a.mov(eax, 0x8000_0006); a.mov(edx, 0x12); a.wrmsr(); // MTRRphysBase0
            a.mov(ecx, 0x250); a.mov(eax, 0x0606_0606); a.mov(edx, 0x0606_0606); a.wrmsr(); // fix64K_00000
            a.mov(ecx, 0x277); a.mov(eax, 0x0007_0106); a.mov(edx, 0x0007_0106); a.wrmsr(); // PAT
            a.mov(ecx, 0x2FF); a.rdmsr(); a.mov(r8d, eax);
            a.mov(ecx, 0x200); a.rdmsr(); a.shl(rdx, 32); a.or(rax, rdx); a.mov(r9, rax);
            a.mov(ecx, 0x250); a.rdmsr(); a.mov(r10d, edx);
            a.mov(ecx, 0x277); a.rdmsr(); a.mov(r11d, eax);
            a.mov(ecx, 0xFE); a.rdmsr(); a.mov(r12d, eax);
            a.mov(r13, 1);
            a.wrmsr();                              // MTRRcap is read-only: #GP
            a.mov(r13, 2);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0xC06UL, s[Gpr.R8]);
        Assert.Equal(0x12_8000_0006UL, s[Gpr.R9]);
        Assert.Equal(0x0606_0606UL, s[Gpr.R10]);
        Assert.Equal(0x0007_0106UL, s[Gpr.R11]);
        Assert.Equal(0x508UL, s[Gpr.R12]);
        Assert.Equal(13UL, g.LoggedVector);
        Assert.Equal(1UL, s[Gpr.R13]);
    }

    [Fact]
    public void Cache_control_instructions_run_at_cpl0_and_wbinvd_is_privileged()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.clflush(__byte_ptr[0x50000]);
            a.wbinvd();
            a.invd();
            a.mov(r8, 1);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R8]);

        using var u = new TestGuest();
        u.Load64(a =>
        {
            a.clflush(__byte_ptr[0x50000]);          // allowed at CPL 3
            a.mov(r8, 1);
            a.wbinvd();
            a.mov(r8, 2);
            a.hlt();
        }, user: true);
        var us = u.RunToHalt();
        Assert.Equal(13UL, u.LoggedVector);
        Assert.Equal(1UL, us[Gpr.R8]);
    }

    [Fact]
    public void Clflush_of_an_unmapped_line_page_faults()
    {
        using var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0UL);   // 0x50000 not present
        g.Load64(a =>
        {
            a.clflush(__byte_ptr[0x50000]);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0UL, g.LoggedError & 2);            // reported as a read
    }

    [Fact]
    public void Rdrand_and_rdseed_are_hidden_and_undefined()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(eax, 1); a.cpuid(); a.mov(r8d, ecx);
            a.mov(eax, 7); a.xor(ecx, ecx); a.cpuid(); a.mov(r9d, ebx);
            a.mov(r10, 1);
            a.rdrand(rax);
            a.mov(r10, 2);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0UL, s[Gpr.R8] & (1UL << 30));      // RDRAND
        Assert.Equal(0UL, s[Gpr.R9] & (1UL << 18));      // RDSEED
        Assert.NotEqual(0UL, s[Gpr.R9] & (1UL << 3));    // BMI1 is implemented, so advertised
        Assert.Equal(0UL, s[Gpr.R9] & ((1UL << 8) | (1UL << 5))); // no BMI2, AVX2
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(1UL, s[Gpr.R10]);

        using var g2 = new TestGuest();
        g2.Load64(a =>
        {
            a.rdseed(rax);
            a.hlt();
        });
        g2.RunToHalt();
        Assert.Equal(6UL, g2.LoggedVector);
    }

    [Fact]
    public void Rdtscp_returns_tsc_aux_in_ecx()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(ecx, 0xC0000103); a.mov(eax, 0x1_0005); a.xor(edx, edx); a.wrmsr();
            a.mov(ecx, 0xFFFF);
            a.rdtscp();
            a.mov(r8, rcx);
            a.mov(eax, 0x80000001); a.cpuid(); a.mov(r9d, edx);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x1_0005UL, s[Gpr.R8]);
        Assert.NotEqual(0UL, s[Gpr.R9] & (1UL << 27));   // RDTSCP advertised
    }

    [Fact]
    public void Ldt_descriptors_load_and_sldt_smsw_lmsw_clts_work()
    {
        using var g = new Guest32();
        const ulong ldt = 0x34000;
        // LDT descriptor (type 2) in GDT slot 0x40; the LDT's entry 0 is a data segment based at 0x100000.
        g.G.Memory.Write(TestGuest.GdtBase + 0x40, 0x0000_8200_0000_00FFUL | ((ldt & 0xFFFF) << 16) | (((ldt >> 16) & 0xFF) << 32));
        g.G.Memory.Write(ldt, 0x00CF_9310_0000_FFFFUL);
        g.G.Memory.Write(0x100010UL, 0xFEEDu);
        var s = g.Run(a =>
        {
            a.mov(ax, 0x40);
            a.lldt(ax);
            a.mov(ax, 0x04);                          // LDT index 0, RPL 0
            a.mov(es, ax);
            a.mov(ebx, __dword_ptr.es[0x10]);
            a.sldt(si);
            a.smsw(dx);
            a.mov(ax, 0x9);                           // PE | TS
            a.lmsw(ax);
            a.smsw(di);
            a.clts();
            a.smsw(bp);
            a.xor(eax, eax);
            a.lmsw(ax);                               // cannot clear PE
            a.smsw(cx);
            a.hlt();
        }, gdtLimit: 0x47);
        Assert.Equal(0xFEEDUL, s[Gpr.Rbx]);
        Assert.Equal(0x40UL, s[Gpr.Rsi] & 0xFFFF);
        Assert.Equal(0x11UL, s[Gpr.Rdx] & 0xFFFF);
        Assert.Equal(0x19UL, s[Gpr.Rdi] & 0xFFFF);
        Assert.Equal(0x11UL, s[Gpr.Rbp] & 0xFFFF);
        Assert.Equal(0x11UL, s[Gpr.Rcx] & 0xFFFF);
        Assert.Equal(0x04, s.Es.Selector);
    }

    [Fact]
    public void Interrupt_shadow_after_mov_ss_holds_the_interrupt_past_the_next_instruction()
    {
        var apic = new FakeLocalApic(0);
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = _ => apic });
        g.Load64(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ax, ss);
            a.sti();
            a.nop();
            a.Label(ref loop);
            a.mov(ss, ax);                            // at CodeBase + 5 (66 8E D0)
            a.inc(r10);                               // at + 8: never interrupted before this one runs
            a.jmp(loop);                              // at + 11
        });
        using var t = new Timer(_ => apic.Raise(0x41), null, 30, Timeout.Infinite);
        g.RunToHalt();
        Assert.Equal(0x41UL, g.LoggedVector);
        // Taken at a boundary outside the shadow: before MOV SS, or after the INC that the shadow covers.
        Assert.True(g.LoggedRip is TestGuest.CodeBase + 5 or TestGuest.CodeBase + 11, $"interrupt at 0x{g.LoggedRip:x}");
    }

    [Fact]
    public void Hlt_sleeps_without_burning_host_cpu()
    {
        var apic = new FakeLocalApic(0);
        using var g = new TestGuest(options: new EmuOptions { LocalApicFactory = _ => apic });
        g.Load64(a =>
        {
            a.sti();
            a.hlt();
            a.cli();
            a.hlt();
        });
        using var t = new Timer(_ => apic.Raise(0x40), null, 600, Timeout.Infinite);
        long before = ThreadCpuTicks();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        g.RunToHalt();
        long used = ThreadCpuTicks() - before;
        Assert.True(sw.ElapsedMilliseconds >= 500, "HLT returned before the interrupt");
        Assert.True(used <= 20, $"the halted vCPU thread used {used} clock ticks of CPU in {sw.ElapsedMilliseconds} ms");
    }

    /// <summary>utime + stime of the calling thread, in clock ticks (/proc/thread-self/stat fields 14 and 15).</summary>
    private static long ThreadCpuTicks()
    {
        string stat = File.ReadAllText("/proc/thread-self/stat");
        string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(f[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(f[12], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Descriptor_table_stores_ltr_cr8_fences_and_multi_byte_nops()
    {
        using var g = new TestGuest();
        const ulong outp = 0x40000;
        g.Load64(a =>
        {
            a.sgdt(__[outp]);
            a.sidt(__[outp + 0x10]);
            a.str(ax);
            a.mov(r8, rax);
            a.mov(ax, TestGuest.TssSel);
            a.ltr(ax);                                              // the GDT's TSS descriptor is available (type 9)
            a.mov(r9b, __byte_ptr[TestGuest.GdtBase + TestGuest.TssSel + 5]);
            a.mov(eax, 5);
            a.mov(cr8, rax);
            a.mov(r10, cr8);
            a.db(0x0F, 0x1F, 0x44, 0x00, 0x00);                     // nopl 0(%rax,%rax)
            a.db(0x66, 0x2E, 0x0F, 0x1F, 0x84, 0, 0, 0, 0, 0);      // nopw %cs:0(%rax,%rax)
            a.pause();
            a.lfence();
            a.sfence();
            a.mfence();
            a.prefetcht0(__byte_ptr[0x50000]);
            a.mov(r11, 7);
            a.mov(ax, TestGuest.TssSel);
            a.ltr(ax);                                              // now busy: #GP
            a.mov(r11, 8);
            a.hlt();
        });
        var s = g.RunToHalt();
        var m = g.Memory;
        Assert.Equal((ushort)0x3F, m.Read<ushort>(outp));
        Assert.Equal(TestGuest.GdtBase, m.Read<ulong>(outp + 2));
        Assert.Equal((ushort)0xFFF, m.Read<ushort>(outp + 0x10));
        Assert.Equal(TestGuest.IdtBase, m.Read<ulong>(outp + 0x12));
        Assert.Equal((ulong)TestGuest.TssSel, s[Gpr.R8] & 0xFFFF);
        Assert.Equal(0x8BUL, s[Gpr.R9] & 0xFF);                     // present, busy 64-bit TSS
        Assert.Equal(5UL, s[Gpr.R10]);
        Assert.Equal(7UL, s[Gpr.R11]);
        Assert.Equal(13UL, g.LoggedVector);
        Assert.Equal((ulong)TestGuest.TssSel, g.LoggedError);
    }

    /// <summary>Instructions of extensions the CPUID model hides must raise #UD, as on a CPU without them.</summary>
    [Theory]
    [InlineData("haddps")]
    [InlineData("movddup")]
    [InlineData("pshufb")]
    [InlineData("palignr")]
    [InlineData("ptest")]
    [InlineData("roundsd")]
    [InlineData("crc32")]
    [InlineData("pcmpistri")]
    [InlineData("xgetbv")]
    [InlineData("vaddps")]
    [InlineData("andn32")]
    public void Instructions_of_hidden_extensions_raise_ud(string which)
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            switch (which)
            {
                case "haddps": a.haddps(xmm0, xmm1); break;
                case "movddup": a.movddup(xmm0, xmm1); break;
                case "pshufb": a.pshufb(xmm0, xmm1); break;
                case "palignr": a.palignr(xmm0, xmm1, 3); break;
                case "ptest": a.ptest(xmm0, xmm1); break;
                case "roundsd": a.roundsd(xmm0, xmm1, 1); break;
                case "crc32": a.crc32(eax, ecx); break;
                case "pcmpistri": a.pcmpistri(xmm0, xmm1, 0); break;
                case "xgetbv": a.xgetbv(); break;
                case "vaddps": a.vaddps(xmm0, xmm1, xmm2); break;
                default: a.db(0xC4, 0xE2, 0x7C, 0xF2, 0xC1); break; // ANDN with VEX.L=1: #UD even with BMI1
            }
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(TestGuest.CodeBase, g.LoggedRip);
    }
}
