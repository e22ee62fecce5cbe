using System.Buffers.Binary;
using Iced.Intel;
using SharpVmm.Machine.Build;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Machine.Tests;

/// <summary>
/// Differential tests for two of issue 15's event-delivery bugs, with QEMU (TCG) as the reference: the same
/// multiboot kernel runs on both, records what its handlers saw and writes it to the serial port; the bytes must
/// match. The host CPU cannot be the reference for these (see tests/SharpVmm.Emulator.Tests/ACCEPTANCE.md): they
/// need ring 0, interrupt delivery and an IDT. The directed tests (InterruptShadowTests, SoftwareInterruptFaultTests)
/// pin the exact values; these show that QEMU agrees.
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
}
