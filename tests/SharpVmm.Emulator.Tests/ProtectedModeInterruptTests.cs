using Iced.Intel;
using Microsoft.Extensions.Logging;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class ProtectedModeInterruptTests
{
    [Fact]
    public void Int_through_a_32_bit_interrupt_gate_and_iretd()
    {
        using var g = new TestGuest();
        const ulong idt = 0x60000, handler = 0x61000;
        // 32-bit interrupt gate for vector 0x30 → Code32:handler, DPL 0.
        ulong gate = (handler & 0xFFFF) | ((ulong)TestGuest.Code32 << 16) | (0x8EUL << 40) | ((handler >> 16) << 48);
        g.Memory.Write(idt + 0x30 * 8, gate);
        var h = new Assembler(32);
        h.pushfd();
        h.pop(esi);                 // flags inside the handler: IF cleared by the interrupt gate
        h.mov(edi, __dword_ptr[esp + 4]); // pushed CS
        h.add(eax, 100);
        h.iretd();
        g.Memory.Write(handler, TestGuest.Assemble(h, handler));
        var a = new Assembler(32);
        a.mov(eax, 1);
        a.@int(0x30);
        a.pushfd();
        a.pop(edx);
        a.cli();
        a.hlt();
        g.Memory.Write(0x10000UL, TestGuest.Assemble(a, 0x10000));
        var s = new VcpuState
        {
            Rip = 0x10000, Rflags = 0x202, Cr0 = 0x11,
            Gdt = new DescriptorTable { Base = TestGuest.GdtBase, Limit = 0x3F },
            Idt = new DescriptorTable { Base = idt, Limit = 0x7FF },
            Cs = new SegmentRegister { Selector = TestGuest.Code32, Type = 0xB, S = true, Present = true, Db = true, G = true, Limit = 0xFFFF_FFFF },
        };
        s.Ds = s.Es = s.Ss = s.Fs = s.Gs = new SegmentRegister { Selector = TestGuest.KernelDs, Type = 3, S = true, Present = true, Db = true, G = true, Limit = 0xFFFF_FFFF };
        s[Gpr.Rsp] = 0x70000;
        g.Cpu.SetState(s);
        var r = g.RunToHalt();
        Assert.Equal(101UL, r[Gpr.Rax]);
        Assert.Equal(0UL, r[Gpr.Rsi] & 0x200);
        Assert.Equal((ulong)TestGuest.Code32, r[Gpr.Rdi]);
        Assert.Equal(0x200UL, r[Gpr.Rdx] & 0x200);
        Assert.Equal(0x70000UL, r[Gpr.Rsp]);
    }

    [Fact]
    public void Unimplemented_instruction_is_logged_at_debug_level()
    {
        var log = new ListLogger();
        using var g = new TestGuest(options: new EmuOptions { Logger = log });
        g.Load64(a => a.xsaves(__[rsp - 4096])); // compacted supervisor-state XSAVE: not in this CPU model
        g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("xsaves", StringComparison.Ordinal));
    }
}
