using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Time;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class SystemInstructionTests
{
    [Fact]
    public void Cpuid_advertises_the_implemented_model_and_hides_avx_x2apic()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(eax, 1);
            a.cpuid();
            a.mov(r8d, ecx);
            a.mov(r9d, edx);
            a.mov(eax, 0x80000001);
            a.cpuid();
            a.mov(r10d, ecx);
            a.mov(r11d, edx);
            a.xor(eax, eax);
            a.cpuid();
            a.hlt();
        });
        var s = g.RunToHalt();
        ulong ecx1 = s[Gpr.R8], edx1 = s[Gpr.R9];
        Assert.Equal(0UL, ecx1 & ((1UL << 28) | (1UL << 21))); // AVX, x2APIC
        Assert.NotEqual(0UL, ecx1 & (1UL << 26));  // XSAVE (see XsaveTests)
        Assert.NotEqual(0UL, ecx1 & (1UL << 17));  // PCID (see CpuModelFeatureTests)
        Assert.NotEqual(0UL, ecx1 & (1UL << 13));  // CX16
        Assert.NotEqual(0UL, edx1 & (1UL << 26));  // SSE2
        Assert.Equal(0UL, edx1 & (1UL << 9));      // no APIC without a LAPIC
        Assert.NotEqual(0UL, s[Gpr.R11] & (1UL << 29)); // LM
        Assert.NotEqual(0UL, s[Gpr.R11] & (1UL << 20)); // NX
        Assert.Equal(0x756E6547UL, s[Gpr.Rbx]); // "Genu"
    }

    [Fact]
    public void Arch_capabilities_says_the_cpu_is_immune_to_meltdown_and_mds_and_is_read_only()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(eax, 7);
            a.xor(ecx, ecx);
            a.cpuid();
            a.mov(r8d, edx);
            a.mov(ecx, 0x10A);
            a.rdmsr();
            a.mov(r9d, eax);
            a.mov(r10d, edx);
            a.wrmsr(); // read-only: #GP
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.NotEqual(0UL, s[Gpr.R8] & (1UL << 29)); // IA32_ARCH_CAPABILITIES present
        ulong caps = s[Gpr.R9];
        Assert.NotEqual(0UL, caps & 1);        // RDCL_NO: Linux skips page-table isolation
        Assert.NotEqual(0UL, caps & (1 << 5)); // MDS_NO: and the VERW on every return to user mode
        Assert.Equal(0UL, caps & (1 << 1));    // no IBRS_ALL: SPEC_CTRL does not exist
        Assert.NotEqual(0UL, s[Gpr.R10] & (1UL << (62 - 32))); // ITS_NO: no return thunk on every kernel RET
        Assert.Equal(13UL, g.LoggedVector);
    }

    [Fact]
    public void Msrs_store_and_unknown_msr_raises_gp()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(ecx, 0xC0000082); // LSTAR
            a.mov(eax, 0x11223344);
            a.mov(edx, 0xFFFFFFFF);
            a.wrmsr();
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.rdmsr();
            a.mov(r8, rax);
            a.mov(r9, rdx);
            a.mov(ecx, 0xC0000100); // FS base
            a.mov(eax, 0x1000);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(r10, __qword_ptr.fs[0x10]);
            a.mov(ecx, 0x12345);
            a.rdmsr();
            a.hlt();
        });
        g.Memory.Write(0x1010UL, 0xCAFEUL);
        var s = g.RunToHalt();
        Assert.Equal(0x11223344UL, s[Gpr.R8]);
        Assert.Equal(0xFFFFFFFFUL, s[Gpr.R9]);
        Assert.Equal(0xCAFEUL, s[Gpr.R10]);
        Assert.Equal(13UL, g.LoggedVector);
    }

    [Fact]
    public void Syscall_and_sysret_round_trip_between_user_and_kernel()
    {
        using var g = new TestGuest();
        const ulong kernelEntry = 0x18000;
        var k = new Assembler(64);
        k.swapgs();
        k.mov(r12, rcx);              // user return RIP
        k.mov(r13, r11);              // user RFLAGS
        k.mov(r14, __qword_ptr.gs[0]);
        k.swapgs();
        k.add(rax, 1000);
        k.sysretq();
        g.Memory.Write(kernelEntry, TestGuest.Assemble(k, kernelEntry));
        g.Memory.Write(0x3000_0UL, 0x77UL);
        g.Load64(a =>
        {
            a.mov(ecx, 0xC0000081); // STAR: kernel CS 0x08, user base 0x18 (+16 = 0x2B code, +8 = 0x23 data)
            a.xor(eax, eax);
            a.mov(edx, 0x0018_0008);
            a.wrmsr();
            a.mov(ecx, 0xC0000082);
            a.mov(eax, (uint)kernelEntry);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0xC0000084); // SFMASK: clear IF
            a.mov(eax, 0x200);
            a.wrmsr();
            a.mov(ecx, 0xC0000102); // KERNEL_GS_BASE
            a.mov(eax, 0x30000);
            a.wrmsr();
            // Drop to user mode with IRETQ.
            var user = a.CreateLabel();
            a.push(TestGuest.UserDs);
            a.push((int)TestGuest.UserStackTop);
            a.push(0x202);
            a.push(TestGuest.UserCs);
            a.lea(rax, __[user]);
            a.push(rax);
            a.iretq();
            a.Label(ref user);
            a.mov(eax, 5);
            a.syscall();
            a.mov(rbx, rax);
            a.mov(r15, 0x1234);
            a.ud2();                 // back in user mode: trap to the recorder
        });
        g.RunToHalt();
        var s = g.Cpu.GetState();
        Assert.True(g.LoggedVector == 6, $"vector {g.LoggedVector} err {g.LoggedError:x} rip {g.LoggedRip:x} cs {g.LoggedCs:x}");
        Assert.True(s[Gpr.Rbx] == 1005, $"rbx {s[Gpr.Rbx]} r15 {s[Gpr.R15]:x} r12 {s[Gpr.R12]:x} rip {g.LoggedRip:x}");
        Assert.Equal(0x1234UL, s[Gpr.R15]);
        Assert.Equal(0x77UL, s[Gpr.R14]);               // kernel saw its GS base after SWAPGS
        Assert.Equal(0x202UL, s[Gpr.R13] & 0x202);       // R11 held user RFLAGS
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal((ulong)TestGuest.UserCs, g.LoggedCs); // the UD2 ran at CPL 3
    }

    [Fact]
    public void Rdtsc_counts_from_the_guest_clock()
    {
        var clock = new GuestClock();
        using var g = new TestGuest(options: new EmuOptions { Clock = clock });
        g.Load64(a =>
        {
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(r8, rax);
            a.mov(ecx, 100000);
            var l = a.CreateLabel();
            a.Label(ref l);
            a.dec(ecx);
            a.jnz(l);
            a.rdtscp();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.hlt();
        });
        ulong before = clock.ReadTsc();
        var s = g.RunToHalt();
        ulong after = clock.ReadTsc();
        Assert.InRange(s[Gpr.R8], before, after);
        Assert.InRange(s[Gpr.Rax], s[Gpr.R8], after);
    }

    [Fact]
    public void Mov_cr3_flushes_the_tlb_and_invlpg_flushes_one_page()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x50000UL, 0x1111UL);
        g.Memory.Write(0x51000UL, 0x2222UL);
        g.Load64(a =>
        {
            a.mov(r8, __qword_ptr[0x50000]);                 // caches 0x50000 → 0x50000
            a.mov(__qword_ptr[TestGuest.Pt + 0x50 * 8], 0x51007); // remap to 0x51000 without INVLPG
            a.mov(r9, __qword_ptr[0x50000]);                 // stale TLB entry is allowed: still 0x1111
            a.invlpg(__[0x50000]);
            a.mov(r10, __qword_ptr[0x50000]);                // now 0x2222
            a.mov(__qword_ptr[TestGuest.Pt + 0x50 * 8], 0x50007);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(r11, __qword_ptr[0x50000]);                // back to 0x1111
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x1111UL, s[Gpr.R8]);
        Assert.Equal(0x1111UL, s[Gpr.R9]);
        Assert.Equal(0x2222UL, s[Gpr.R10]);
        Assert.Equal(0x1111UL, s[Gpr.R11]);
    }

    [Fact]
    public void Real_mode_guest_switches_to_protected_then_long_mode()
    {
        using var g = new TestGuest();
        // 16-bit code at 0xB000 (CS=0, IP=0xB000) builds nothing itself: it uses the test GDT and page tables.
        var a16 = new Assembler(16);
        var pm = a16.CreateLabel();
        a16.cli();
        a16.mov(ax, 0);
        a16.mov(ds, ax);
        a16.lgdt(__[0x0F00]);
        a16.mov(eax, cr0);
        a16.or(eax, 1);
        a16.mov(cr0, eax);
        a16.jmp(TestGuest.Code32, 0xB100); // far jump into 32-bit protected mode
        g.Memory.Write(0xB000UL, TestGuest.Assemble(a16, 0xB000));
        g.Memory.Write<ushort>(0xF00, 0x3F);
        g.Memory.Write<uint>(0xF02, (uint)TestGuest.GdtBase);
        var a32 = new Assembler(32);
        a32.mov(ax, TestGuest.KernelDs);
        a32.mov(ds, ax);
        a32.mov(ss, ax);
        a32.mov(esp, 0x70000);
        a32.mov(eax, cr4);
        a32.or(eax, 0x20);
        a32.mov(cr4, eax);
        a32.mov(eax, (uint)TestGuest.Pml4);
        a32.mov(cr3, eax);
        a32.mov(ecx, 0xC0000080);
        a32.rdmsr();
        a32.or(eax, 0x100);
        a32.wrmsr();
        a32.mov(eax, cr0);
        a32.or(eax, 0x80000000);
        a32.mov(cr0, eax);
        a32.jmp(TestGuest.KernelCs, 0xB200);
        g.Memory.Write(0xB100UL, TestGuest.Assemble(a32, 0xB100));
        var a64 = new Assembler(64);
        a64.mov(rax, 0x1122334455667788);
        a64.push(rax);
        a64.pop(rbx);
        a64.hlt();
        g.Memory.Write(0xB200UL, TestGuest.Assemble(a64, 0xB200));
        var st = new VcpuState { Rip = 0xB000, Cs = SegmentRegister.RealMode(0, 0xB), Ds = SegmentRegister.RealMode(0), Es = SegmentRegister.RealMode(0), Ss = SegmentRegister.RealMode(0), Fs = SegmentRegister.RealMode(0), Gs = SegmentRegister.RealMode(0) };
        st.Idt = new DescriptorTable { Limit = 0x3FF };
        st.Gdt = new DescriptorTable { Limit = 0xFFFF };
        st[Gpr.Rsp] = 0x7000;
        g.Cpu.SetState(st);
        var s = g.RunToHalt();
        Assert.Equal(0x1122334455667788UL, s[Gpr.Rbx]);
        Assert.True(s.Cs.L);
        Assert.Equal(0x500UL, s.Efer & 0x500); // LME and LMA
        Assert.Equal(0x70000UL, s[Gpr.Rsp]);
    }
}
