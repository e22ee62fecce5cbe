using System.Buffers.Binary;
using Iced.Intel;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Machine.Tests;

/// <summary>
/// Differential tests for issue 15's three event-delivery bugs, with QEMU (TCG) as the reference: the same
/// multiboot kernel runs on both, records what its handlers saw and writes it to the serial port; the bytes must
/// match. The host CPU cannot be the reference for these (see tests/SharpVmm.Emulator.Tests/ACCEPTANCE.md): they
/// need ring 0, interrupt delivery and an IDT. The directed tests (InterruptShadowTests, SoftwareInterruptFaultTests,
/// SyscallSingleStepTests) pin the exact values; these show that QEMU agrees.
/// </summary>
public sealed class QemuReferenceCpuTests : IDisposable
{
    private const uint Results = 0x30_0000, ResultBytes = 32, Idt = 0x20_0000, IdtDesc = 0x20_1000, Stack = 0x50_0000;
    private const uint HandlerA = 0x18_0000, HandlerB = 0x18_0100;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-qemuref-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static MultibootElf.Segment IdtWith(params (int Vector, uint Handler, bool Present)[] gates)
    {
        var b = new byte[256 * 8];
        foreach (var (v, h, present) in gates)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(v * 8), h & 0xFFFF); // selector filled in at run time
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(v * 8 + 4), (h & 0xFFFF_0000) | (present ? 0x8E00u : 0x0E00u));
        }
        return new MultibootElf.Segment(Idt, b);
    }

    private static MultibootElf.Segment Code(uint address, Action<Assembler> body)
    {
        var a = new Assembler(32);
        body(a);
        return new MultibootElf.Segment(address, MultibootElf.Assemble(a, address));
    }

    /// <summary>Stack and IDT, the test, then the result block out of COM1 and an exit through port 0xF4.</summary>
    private static byte[] Kernel(Action<Assembler> test, params MultibootElf.Segment[] extra)
    {
        var idtDesc = new byte[6];
        BinaryPrimitives.WriteUInt16LittleEndian(idtDesc, 256 * 8 - 1);
        BinaryPrimitives.WriteUInt32LittleEndian(idtDesc.AsSpan(2), Idt);
        return MultibootElf.Kernel(a =>
        {
            a.mov(esp, Stack);
            // Every gate gets the code selector the loader left in CS (QEMU's and ours need not agree).
            var gate = a.CreateLabel();
            a.mov(ax, cs);
            a.mov(edi, Idt + 2);
            a.mov(ecx, 256);
            a.Label(ref gate);
            a.mov(__word_ptr[edi], ax);
            a.add(edi, 8);
            a.dec(ecx);
            a.jnz(gate);
            a.lidt(__[IdtDesc]);
            a.mov(al, 0xFF);                                  // the 8259s masked: QEMU's BIOS left the PIT's IRQ 0 on
            a.@out(0x21, al);
            a.@out(0xA1, al);
            test(a);
            a.cli();
            a.mov(esi, Results);
            a.mov(ecx, ResultBytes);
            a.mov(dx, 0x3F8);
            a.rep.outsb();
            a.mov(eax, 0x10);
            a.@out(0xF4, eax);
            a.hlt();
        }, extra: [.. extra, new MultibootElf.Segment(IdtDesc, idtDesc)]);
    }

    private (byte[] Ours, byte[] Qemu) RunBoth(string name, byte[] elf)
    {
        string kernel = Path.Combine(_dir, name + ".elf");
        File.WriteAllBytes(kernel, elf);
        string ourSerial = Path.Combine(_dir, name + ".ours"), qemuSerial = Path.Combine(_dir, name + ".qemu");
        using (var vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 64UL << 20,
            Cpus = 1,
            Kernel = kernel,
            Serial = "file:" + ourSerial,
        }))
        {
            var r = GuestHarness.RunToEnd(vm);
            Assert.Equal(0x21, r.ExitCode);
        }
        var q = ExternalTool.Run("qemu-system-x86_64",
            ["-accel", "tcg", "-M", "pc", "-m", "64", "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", "file:" + qemuSerial, "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", kernel],
            timeoutMs: 120_000);
        Assert.True(q.ExitCode == 0x21, $"QEMU exit {q.ExitCode}: {q.Output}");
        return (File.ReadAllBytes(ourSerial), File.ReadAllBytes(qemuSerial));
    }

    [NeedsFact(Need.QemuSystem)]
    public void An_interrupt_pending_at_sti_is_taken_after_the_shadowed_instruction_as_on_qemu()
    {
        // Handler: count, save the interrupted EIP, EOI.
        var handler = Code(HandlerA, h =>
        {
            h.push(eax);
            h.push(ecx);
            h.mov(ecx, __dword_ptr[Results]);
            h.mov(eax, __dword_ptr[esp + 8]);
            h.mov(__dword_ptr[ecx * 4 + (int)(Results + 4)], eax);
            h.inc(__dword_ptr[Results]);
            h.mov(__dword_ptr[0xFEE0_00B0], 0);
            h.pop(ecx);
            h.pop(eax);
            h.iretd();
        });
        var elf = Kernel(a =>
        {
            a.cli();
            a.mov(__dword_ptr[0xFEE0_00F0], 0x1FF);           // APIC software-enabled
            a.mov(__dword_ptr[0xFEE0_0300], (1 << 18) | 0x40); // self-IPI, pending while IF = 0
            a.sti();
            a.cli();                                          // in the shadow: no delivery, and IF is 0 after it
            a.mov(eax, __dword_ptr[Results]);
            a.mov(__dword_ptr[Results + 16], eax);            // count after sti; cli (0)
            a.sti();
            a.nop();                                          // in the shadow
            a.cli();                                          // delivered before this CLI
            a.mov(eax, __dword_ptr[Results]);
            a.mov(__dword_ptr[Results + 20], eax);            // count after sti; nop; cli (1)
            a.mov(__dword_ptr[0xFEE0_0300], (1 << 18) | 0x41);
            a.sti();
            a.hlt();                                          // STI; HLT: woken by the interrupt
            a.cli();
            a.mov(eax, __dword_ptr[Results]);
            a.mov(__dword_ptr[Results + 24], eax);            // 2
        }, handler, IdtWith((0x40, HandlerA, true), (0x41, HandlerA, true)));
        var (ours, qemu) = RunBoth("sti-shadow", elf);
        Assert.Equal((int)ResultBytes, ours.Length);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(ours.AsSpan(20)));
        Assert.Equal(Convert.ToHexString(qemu), Convert.ToHexString(ours));
    }

    [NeedsFact(Need.QemuSystem)]
    public void Int_n_faulting_on_a_not_present_gate_saves_the_int_itself_as_on_qemu()
    {
        // #NP: save the error code and the faulting EIP, make gate 0x80 present, return to re-run the INT.
        var np = Code(HandlerA, h =>
        {
            h.push(eax);
            h.mov(eax, __dword_ptr[esp + 4]);
            h.mov(__dword_ptr[Results], eax);
            h.mov(eax, __dword_ptr[esp + 8]);
            h.mov(__dword_ptr[Results + 4], eax);
            h.or(__byte_ptr[Idt + 0x80 * 8 + 5], 0x80);
            h.pop(eax);
            h.add(esp, 4);
            h.iretd();
        });
        var svc = Code(HandlerB, h =>
        {
            h.push(eax);
            h.mov(eax, __dword_ptr[esp + 4]);
            h.mov(__dword_ptr[Results + 8], eax);
            h.inc(__dword_ptr[Results + 12]);
            h.pop(eax);
            h.iretd();
        });
        var elf = Kernel(a =>
        {
            a.@int(0x80);
            a.mov(__dword_ptr[Results + 16], 0x600D);
        }, np, svc, IdtWith((11, HandlerA, true), (0x80, HandlerB, false)));
        var (ours, qemu) = RunBoth("int-np", elf);
        Assert.Equal((int)ResultBytes, ours.Length);
        Assert.Equal(0x80u * 8 + 2, BinaryPrimitives.ReadUInt32LittleEndian(ours));  // IDT, vector 0x80
        Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(ours.AsSpan(4)) + 2, BinaryPrimitives.ReadUInt32LittleEndian(ours.AsSpan(8)));
        Assert.Equal(Convert.ToHexString(qemu), Convert.ToHexString(ours));
    }

    /// <summary>
    /// 64-bit kernel for the SYSCALL/SYSRET case: IA-32e paging (2 MiB user pages), a Linux-style GDT (kernel code
    /// 0x10, data 0x18, user data 0x2B, user code 0x33) with a TSS for RSP0, a 64-bit IDT with #DB. User code sets TF
    /// with POPF, so the step trap falls after the SYSCALL that follows (which masks TF through SFMASK); the kernel
    /// then SYSRETs with TF in R11, which must trap before the first user instruction, with the user CS in the frame.
    /// </summary>
    private static byte[] SyscallStepKernel()
    {
        const uint Gdt = 0x20_4000, GdtDesc = 0x20_4100, Tss = 0x20_5000, Idt64 = 0x20_6000, Idt64Desc = 0x20_7000;
        const uint Pml4 = 0x40_0000, Body = 0x18_1000, DbHandler = 0x18_2000, User1 = 0x18_3000, User2 = 0x18_3100;
        const uint Entry = 0x18_4000, Phase = Results + 28;
        var gdt = new byte[0x48];
        ulong[] d = [0, 0, 0x00AF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF, 0x00CF_FB00_0000_FFFF, 0x00CF_F300_0000_FFFF, 0x00AF_FB00_0000_FFFF];
        for (int i = 0; i < d.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(gdt.AsSpan(i * 8), d[i]);
        ulong tssLo = 0x67 | ((ulong)(Tss & 0xFF_FFFF) << 16) | (0x89UL << 40) | ((ulong)(Tss >> 24) << 56);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt.AsSpan(0x38), tssLo);
        var gdtDesc = new byte[6];
        BinaryPrimitives.WriteUInt16LittleEndian(gdtDesc, 0x47);
        BinaryPrimitives.WriteUInt32LittleEndian(gdtDesc.AsSpan(2), Gdt);
        var tss = new byte[0x68];
        BinaryPrimitives.WriteUInt64LittleEndian(tss.AsSpan(4), Stack);            // RSP0
        BinaryPrimitives.WriteUInt16LittleEndian(tss.AsSpan(0x66), 0x68);
        var idt = new byte[256 * 16];
        BinaryPrimitives.WriteUInt32LittleEndian(idt.AsSpan(16), (DbHandler & 0xFFFF) | (0x10u << 16));
        BinaryPrimitives.WriteUInt32LittleEndian(idt.AsSpan(20), (DbHandler & 0xFFFF_0000) | 0x8E00);
        var idtDesc = new byte[10];
        BinaryPrimitives.WriteUInt16LittleEndian(idtDesc, 256 * 16 - 1);
        BinaryPrimitives.WriteUInt64LittleEndian(idtDesc.AsSpan(2), Idt64);
        var tables = new byte[0x3000];
        BinaryPrimitives.WriteUInt64LittleEndian(tables, (Pml4 + 0x1000) | 7);
        BinaryPrimitives.WriteUInt64LittleEndian(tables.AsSpan(0x1000), (Pml4 + 0x2000) | 7);
        for (int i = 0; i < 32; i++) BinaryPrimitives.WriteUInt64LittleEndian(tables.AsSpan(0x2000 + i * 8), ((ulong)i << 21) | 0x87);

        static MultibootElf.Segment Code64(uint address, Action<Assembler> body)
        {
            var a = new Assembler(64);
            body(a);
            return new MultibootElf.Segment(address, MultibootElf.Assemble(a, address));
        }
        // #DB: count, note the CS and RIP it interrupted, clear TF in the frame.
        var db = Code64(DbHandler, h =>
        {
            h.push(rax);
            h.inc(__dword_ptr[Results]);
            h.mov(rax, __qword_ptr[rsp + 16]);
            h.mov(__dword_ptr[Results + 4], eax);
            h.mov(rax, __qword_ptr[rsp + 8]);
            h.mov(__dword_ptr[Results + 8], eax);
            h.and(__qword_ptr[rsp + 24], ~0x100);
            h.pop(rax);
            h.iretq();
        });
        // SYSCALL entry: the first time, note the flags and the #DB count, then SYSRET to User2 with TF set; the
        // second time (from User2), write the results out and exit.
        var entry = Code64(Entry, k =>
        {
            var finish = k.CreateLabel();
            k.inc(__dword_ptr[Phase]);
            k.cmp(__dword_ptr[Phase], 1);
            k.jne(finish);
            k.pushfq();
            k.pop(rax);
            k.mov(__dword_ptr[Results + 12], eax);                      // RFLAGS in the kernel: TF masked
            k.mov(eax, __dword_ptr[Results]);
            k.mov(__dword_ptr[Results + 16], eax);                      // no #DB after SYSCALL
            k.mov(ecx, User2);
            k.mov(r11, 0x302);                                          // IF, TF for user mode
            k.db(0x48, 0x0F, 0x07);                                     // SYSRETQ
            k.Label(ref finish);
            k.mov(rsi, Results);
            k.mov(ecx, ResultBytes);
            k.mov(dx, 0x3F8);
            k.rep.outsb();
            k.mov(eax, 0x10);
            k.@out(0xF4, eax);
            k.hlt();
        });
        var user1 = Code64(User1, u =>
        {
            u.pushfq();
            u.or(__qword_ptr[rsp], 0x100);
            u.popfq();
            u.syscall();                                                // TF traps after this one: masked
        });
        var user2 = Code64(User2, u =>
        {
            u.mov(__dword_ptr[Results + 20], 1);                         // first user instruction after SYSRET
            u.syscall();
        });
        // 64-bit kernel body: TSS, IDT, SYSCALL MSRs, then IRETQ to User1 at CPL 3.
        var body = Code64(Body, k =>
        {
            k.mov(ax, 0x18);
            k.mov(ds, ax); k.mov(es, ax); k.mov(ss, ax);
            k.mov(rsp, Stack);
            k.mov(ax, 0x38);
            k.ltr(ax);
            k.lidt(__[Idt64Desc]);
            k.mov(ecx, 0xC000_0081); k.xor(eax, eax); k.mov(edx, 0x0023_0010); k.wrmsr();   // STAR
            k.mov(ecx, 0xC000_0082); k.mov(eax, Entry); k.xor(edx, edx); k.wrmsr();        // LSTAR
            k.mov(ecx, 0xC000_0084); k.mov(eax, 0x4_0700); k.xor(edx, edx); k.wrmsr();     // SFMASK: TF, IF, DF, AC
            k.push(0x2B);
            k.push(0x60_0000);
            k.push(0x2);
            k.push(0x33);
            k.push((int)User1);
            k.iretq();
        });
        return MultibootElf.Kernel(a =>
        {
            a.lgdt(__[GdtDesc]);
            a.mov(ax, 0x18);
            a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax);
            a.mov(esp, Stack);
            a.mov(al, 0xFF);
            a.@out(0x21, al);
            a.@out(0xA1, al);
            a.mov(eax, cr4);
            a.or(eax, 0x20);
            a.mov(cr4, eax);
            a.mov(eax, Pml4);
            a.mov(cr3, eax);
            a.mov(ecx, 0xC000_0080);
            a.rdmsr();
            a.or(eax, 0x101);                                            // LME, SCE
            a.wrmsr();
            a.mov(eax, cr0);
            a.or(eax, unchecked((int)0x8000_0000));
            a.mov(cr0, eax);
            a.push(0x10);
            a.push((int)Body);
            a.retf();                                                    // into 64-bit mode
        }, extra:
        [
            new MultibootElf.Segment(Gdt, gdt), new MultibootElf.Segment(GdtDesc, gdtDesc), new MultibootElf.Segment(Tss, tss),
            new MultibootElf.Segment(Idt64, idt), new MultibootElf.Segment(Idt64Desc, idtDesc), new MultibootElf.Segment(Pml4, tables),
            db, entry, user1, user2, body,
        ]);
    }

    [NeedsFact(Need.QemuSystem)]
    public void Single_step_across_syscall_and_sysret_follows_the_tf_they_leave_as_on_qemu()
    {
        var (ours, qemu) = RunBoth("syscall-step", SyscallStepKernel());
        Assert.Equal((int)ResultBytes, ours.Length);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(ours));            // one #DB: after SYSRET
        Assert.Equal(0x33u, BinaryPrimitives.ReadUInt32LittleEndian(ours.AsSpan(4))); // user CS in its frame
        Assert.Equal(0x18_3100u, BinaryPrimitives.ReadUInt32LittleEndian(ours.AsSpan(8)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(ours.AsSpan(16)));   // none in the kernel
        Assert.Equal(Convert.ToHexString(qemu), Convert.ToHexString(ours));
    }
}
