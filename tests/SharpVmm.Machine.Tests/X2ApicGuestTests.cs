using Iced.Intel;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Machine.Tests;

/// <summary>
/// A multiboot test kernel that runs its machine in x2APIC mode: enables it, reads its ID and LDR through MSRs,
/// takes a self-IPI and a timer interrupt with EOI through MSRs, starts every AP with INIT/SIPI through the 64-bit
/// ICR and has each AP enable x2APIC and IPI the BSP back. A #GP handler counts (and skips) the accesses the SDM
/// forbids: x2APIC registers in xAPIC mode, x2APIC to xAPIC without going through disabled, reading EOI.
/// </summary>
public sealed class X2ApicGuestTests : IDisposable
{
    private const uint Results = 0x30_0000, Idt = 0x20_0000, IdtDesc = 0x20_1000;
    private const uint GpCount = Results, SelfIpiCount = Results + 4, TimerCount = Results + 8, ApIpiCount = Results + 12;
    private const uint ApCounter = 0x7000, ApIds = 0x7010, Trampoline = 0x8000;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-x2apic-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static void Wrmsr(Assembler a, uint msr, uint low, uint high = 0)
    {
        a.mov(ecx, msr);
        a.mov(eax, low);
        a.mov(edx, high);
        a.wrmsr();
    }

    private static void Rdmsr(Assembler a, uint msr, uint store)
    {
        a.mov(ecx, msr);
        a.rdmsr();
        a.mov(__dword_ptr[store], eax);
    }

    private static void Gate(Assembler a, int vector, uint handler)
    {
        uint g = Idt + (uint)vector * 8;
        a.mov(__word_ptr[g], (ushort)handler);
        a.mov(__word_ptr[g + 6], (ushort)(handler >> 16));
        a.mov(__word_ptr[g + 2], cs);
        a.mov(__word_ptr[g + 4], 0x8E00); // present 32-bit interrupt gate, DPL 0
    }

    /// <summary>An interrupt handler at <paramref name="address"/>: count, EOI through MSR 0x80B, return.</summary>
    private static MultibootElf.Segment CountingHandler(uint address, uint counter)
    {
        var a = new Assembler(32);
        a.pushad();
        a.@lock.inc(__dword_ptr[counter]);
        Wrmsr(a, 0x80B, 0);
        a.popad();
        a.iretd();
        return new MultibootElf.Segment(address, MultibootElf.Assemble(a, address));
    }

    private const uint GpHandler = 0x18_0000, SelfIpiHandler = 0x18_0100, TimerHandler = 0x18_0200, ApIpiHandler = 0x18_0300;

    /// <summary>#GP: count it and step over the 2-byte RDMSR/WRMSR that raised it.</summary>
    private static MultibootElf.Segment SkippingGpHandler()
    {
        var a = new Assembler(32);
        a.add(esp, 4);
        a.add(__dword_ptr[esp], 2);
        a.@lock.inc(__dword_ptr[GpCount]);
        a.iretd();
        return new MultibootElf.Segment(GpHandler, MultibootElf.Assemble(a, GpHandler));
    }

    private byte[] Kernel(int aps)
    {
        // Each AP wakes in real mode at 0x8000: x2APIC on, its x2APIC ID into its slot, count in, IPI the BSP, stop.
        var ap = new Assembler(16);
        ap.xor(ax, ax);
        ap.mov(ds, ax);
        ap.mov(ecx, 0x1B);
        ap.rdmsr();
        ap.or(eax, 0x400);
        ap.wrmsr();
        ap.mov(ecx, 0x802);
        ap.rdmsr();
        ap.mov(__dword_ptr[eax * 4 + (int)ApIds], eax);
        ap.@lock.inc(__dword_ptr[ApCounter]);
        ap.mov(ecx, 0x830);
        ap.mov(eax, 0x60);                       // fixed, vector 0x60, physical destination 0 (the BSP)
        ap.xor(edx, edx);
        ap.wrmsr();
        ap.cli();
        ap.hlt();
        var apCode = MultibootElf.Assemble(ap, 0);

        return MultibootElf.Kernel(a =>
        {
            a.mov(esp, 0x9_0000);
            Gate(a, 13, GpHandler);
            Gate(a, 0x40, SelfIpiHandler);
            Gate(a, 0x50, TimerHandler);
            Gate(a, 0x60, ApIpiHandler);
            a.mov(__word_ptr[IdtDesc], 0x7FF);
            a.mov(__dword_ptr[IdtDesc + 2], Idt);
            a.lidt(__[IdtDesc]);

            a.mov(eax, 1);
            a.cpuid();
            a.mov(__dword_ptr[Results + 0x10], ecx);
            Rdmsr(a, 0x802, Results + 0x14);                 // xAPIC mode: #GP (1)
            a.mov(eax, __dword_ptr[0xFEE0_0030]);            // the MMIO page answers in xAPIC mode
            a.mov(__dword_ptr[Results + 0x18], eax);

            a.mov(ecx, 0x1B);
            a.rdmsr();
            a.or(eax, 0x400);
            a.wrmsr();                                       // xAPIC -> x2APIC
            a.and(eax, ~0x400);
            a.wrmsr();                                       // x2APIC -> xAPIC: #GP (2)
            a.mov(ecx, 0x1B);
            a.rdmsr();
            a.mov(__dword_ptr[Results + 0x1C], eax);
            Rdmsr(a, 0x802, Results + 0x20);                 // x2APIC ID
            Rdmsr(a, 0x80D, Results + 0x24);                 // LDR
            Rdmsr(a, 0x803, Results + 0x28);                 // version
            a.mov(eax, __dword_ptr[0xFEE0_0030]);            // no MMIO page in x2APIC mode
            a.mov(__dword_ptr[Results + 0x2C], eax);
            Rdmsr(a, 0x80B, Results + 0x30);                 // EOI is write-only: #GP (3)

            Wrmsr(a, 0x80F, 0x1FF);                          // software-enable, spurious 0xFF
            a.sti();
            Wrmsr(a, 0x83F, 0x40);                           // SELF IPI
            a.nop();
            a.mov(eax, __dword_ptr[SelfIpiCount]);
            a.mov(__dword_ptr[Results + 0x34], eax);         // taken at once

            Wrmsr(a, 0x832, 0x50);                           // LVT timer: one-shot, vector 0x50
            Wrmsr(a, 0x83E, 0x0B);                           // divide by 1
            Wrmsr(a, 0x838, 1_000_000);                      // 1 ms
            // Check and sleep with interrupts held off, then STI; HLT (the STI shadow makes the pair atomic): a
            // descheduled vCPU thread can see the 1 ms timer fire before it reaches HLT, and a bare HLT after the
            // interrupt was taken would sleep for ever.
            var waitTimer = a.CreateLabel();
            var timerTaken = a.CreateLabel();
            a.Label(ref waitTimer);
            a.cli();
            a.cmp(__dword_ptr[TimerCount], 0);
            a.jne(timerTaken);
            a.sti();
            a.hlt();
            a.jmp(waitTimer);
            a.Label(ref timerTaken);
            a.sti();

            // SMP bring-up through the 64-bit ICR: INIT then STARTUP to each AP by its x2APIC ID.
            a.mov(esi, 1);
            var nextAp = a.CreateLabel();
            var apsDone = a.CreateLabel();
            a.Label(ref nextAp);
            a.cmp(esi, aps);
            a.ja(apsDone);
            a.mov(ecx, 0x830);
            a.mov(edx, esi);
            a.mov(eax, 0x4500);                              // INIT, assert
            a.wrmsr();
            a.mov(eax, 0x4600 | (Trampoline >> 12));         // STARTUP, vector 0x08
            a.wrmsr();
            a.inc(esi);
            a.jmp(nextAp);
            a.Label(ref apsDone);
            a.mov(ecx, 200_000_000);
            var wait = a.CreateLabel();
            var counted = a.CreateLabel();
            a.Label(ref wait);
            a.cmp(__dword_ptr[ApCounter], aps);
            a.je(counted);
            a.pause();
            a.dec(ecx);
            a.jnz(wait);
            a.Label(ref counted);
            if (aps > 0)
            {
                var ipi = a.CreateLabel();
                var done = a.CreateLabel();
                a.mov(ecx, 200_000_000);
                a.Label(ref ipi);                             // the APs' IPIs (they may merge in the IRR: at least one)
                a.cmp(__dword_ptr[ApIpiCount], 0);
                a.jne(done);
                a.pause();
                a.dec(ecx);
                a.jnz(ipi);
                a.Label(ref done);
            }
            a.cli();
            a.mov(eax, 0x21);
            a.@out(0xF4, eax);
            a.hlt();
        }, bss: 0x1000, extra:
        [
            new MultibootElf.Segment(Trampoline, apCode), SkippingGpHandler(),
            CountingHandler(SelfIpiHandler, SelfIpiCount), CountingHandler(TimerHandler, TimerCount), CountingHandler(ApIpiHandler, ApIpiCount),
        ]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void A_test_kernel_runs_the_machine_in_x2apic_mode(int cpus)
    {
        string path = Path.Combine(_dir, "x2apic.elf");
        File.WriteAllBytes(path, Kernel(cpus - 1));
        using var vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 64UL << 20,
            Cpus = cpus,
            Kernel = path,
            Serial = "file:" + Path.Combine(_dir, "serial.txt"),
        });
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.PowerOff, r.Reason);
        Assert.Equal(0x43, r.ExitCode);
        var m = vm.Memory;
        Assert.NotEqual(0u, m.Read<uint>(Results + 0x10) & (1u << 21));     // CPUID.1:ECX.x2APIC
        Assert.Equal(0x0005_0014u, m.Read<uint>(Results + 0x18));             // xAPIC version through MMIO
        Assert.Equal(0xFEE0_0D00u, m.Read<uint>(Results + 0x1C));             // BSP, EXTD, EN: still x2APIC after the #GP
        Assert.Equal(0u, m.Read<uint>(Results + 0x20));                        // x2APIC ID
        Assert.Equal(1u, m.Read<uint>(Results + 0x24));                        // LDR: cluster 0, bit 0
        Assert.Equal(0x0005_0014u, m.Read<uint>(Results + 0x28));             // version through MSR 0x803
        Assert.NotEqual(0x0005_0014u, m.Read<uint>(Results + 0x2C));          // the MMIO page is gone
        Assert.Equal(3u, m.Read<uint>(GpCount));
        Assert.Equal(1u, m.Read<uint>(Results + 0x34));
        Assert.Equal(1u, m.Read<uint>(TimerCount));
        Assert.Equal((uint)(cpus - 1), m.Read<uint>(ApCounter));
        for (int id = 1; id < cpus; id++) Assert.Equal((uint)id, m.Read<uint>(ApIds + (uint)id * 4));
        if (cpus > 1) Assert.NotEqual(0u, m.Read<uint>(ApIpiCount));
    }
}
