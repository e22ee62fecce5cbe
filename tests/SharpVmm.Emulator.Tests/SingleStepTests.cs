using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>RFLAGS.TF: a #DB trap after every instruction that starts with TF set.</summary>
public class SingleStepTests
{
    internal const ulong DbHandler = 0x28000, Count = 0x9100, Rips = 0x9108, Dr6Log = 0x9300;

    /// <summary>A #DB handler that counts traps and logs each trap's RIP at <see cref="Rips"/>[n] and DR6 at <see cref="Dr6Log"/>.</summary>
    internal static void InstallDebugHandler(TestGuest g)
    {
        var a = new Iced.Intel.Assembler(64);
        a.push(rax);
        a.push(rbx);
        a.inc(__qword_ptr[Count]);
        a.mov(rax, __qword_ptr[Count]);
        a.mov(rbx, __qword_ptr[rsp + 16]);        // the trap's RIP: after the stepped instruction
        a.mov(__qword_ptr[rax * 8 + (long)(Rips - 8)], rbx);
        a.mov(rbx, dr6);
        a.mov(__qword_ptr[Dr6Log], rbx);
        a.pop(rbx);
        a.pop(rax);
        a.iretq();
        g.Memory.Write(DbHandler, TestGuest.Assemble(a, DbHandler));
        ulong gateLo = (DbHandler & 0xFFFF) | ((ulong)TestGuest.KernelCs << 16) | (0x8EUL << 40) | ((DbHandler >> 16 & 0xFFFF) << 48);
        g.Memory.Write(TestGuest.IdtBase + 16, gateLo);
        g.Memory.Write(TestGuest.IdtBase + 24, DbHandler >> 32);
    }

    [Fact]
    public void Trap_follows_each_instruction_run_with_tf_and_mov_ss_defers_it()
    {
        using var g = new TestGuest();
        InstallDebugHandler(g);
        g.Load64(a =>
        {
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();                              // sets TF: no trap after the POPF itself
            a.nop();                                // 1
            a.mov(ecx, 1);                          // 2
            a.mov(ax, ss);                          // 3
            a.mov(ss, ax);                          // trap held off ...
            a.mov(esi, 3);                          // 4 ... and taken here
            a.pushfq();                             // 5
            a.and(__qword_ptr[rsp], ~0x100);        // 6
            a.popfq();                              // 7: TF was set when it started
            a.mov(edx, 2);                          // not stepped
            a.hlt();
        });
        var s = g.RunToHalt();
        var m = g.Memory;
        Assert.Equal(7UL, m.Read<ulong>(Count));
        ulong first = m.Read<ulong>(Rips);
        Assert.Equal(0x90, m.Read<byte>(first - 1));                  // right after the NOP
        ulong afterSsLoad = m.Read<ulong>(Rips + 3 * 8);
        Assert.Equal(0xBE, m.Read<byte>(afterSsLoad - 5));            // after MOV ESI, 3, not after MOV SS
        Assert.NotEqual(0UL, m.Read<ulong>(Dr6Log) & 0x4000);         // DR6.BS
        Assert.Equal(2UL, s[Gpr.Rdx]);
        Assert.Equal(0UL, s.Rflags & 0x100);
    }

    [Fact]
    public void Faulting_instruction_under_tf_takes_its_fault_not_the_trap()
    {
        using var g = new TestGuest();
        InstallDebugHandler(g);
        g.Load64(a =>
        {
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();
            a.ud2();
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(0UL, g.Memory.Read<ulong>(Count));
    }
}
