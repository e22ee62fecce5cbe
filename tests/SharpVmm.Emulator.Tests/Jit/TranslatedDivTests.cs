using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Jit;

/// <summary>Unsigned DIV r32/r64 as host code: the interpreter's results and flags, and #DE (zero divisor, quotient too wide) precisely.</summary>
public class TranslatedDivTests
{
    private static readonly (ulong Rdx, ulong Rax, ulong Divisor)[] Cases =
    [
        (0, 100, 7),
        (0, ulong.MaxValue, 3),
        (5, 0x1234_5678_9ABC_DEF0, 6),
        (0x7FFF_FFFF_FFFF_FFFE, ulong.MaxValue, ulong.MaxValue),
        (0xFFFF_FFFF_0000_0001, 0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF_0000_0002), // 32-bit: EDX 1 < ECX 2
        (0, 1, 1),
    ];

    private static (VcpuState State, X86Cpu Cpu) Run(JitMode mode, bool wide)
    {
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        g.Load64(a =>
        {
            for (int i = 0; i < Cases.Length; i++)
            {
                var (hi, lo, d) = Cases[i];
                a.mov(rdx, hi);
                a.mov(rax, lo);
                a.mov(rbx, d);
                a.mov(ecx, 1);
                a.cmp(ecx, 2); // CF = 1: DIV leaves the flags as they were, so CF must survive it
                if (wide) a.div(rbx); else a.div(ebx);
                a.adc(r8, 0);
                a.add(r9, rax);
                a.xor(r10, rdx);
                a.mov(__qword_ptr[0x60000 + (ulong)i * 16], rax);
                a.mov(__qword_ptr[0x60008 + (ulong)i * 16], rdx);
            }
            // Last: a zero divisor, then (for the interpreter) a quotient too wide: each must raise #DE at the DIV.
            a.xor(ebx, ebx);
            a.mov(rdx, 9);
            if (wide) a.div(rbx); else a.div(ebx);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0UL, g.LoggedVector);
        Assert.Equal(1UL, g.ExceptionCount);
        ulong[] results = new ulong[Cases.Length * 2];
        for (int i = 0; i < results.Length; i++) results[i] = g.Memory.Read<ulong>(0x60000 + (ulong)i * 8);
        return (Check(s, results, g), (X86Cpu)g.Cpu);
    }

    private static VcpuState Check(VcpuState s, ulong[] results, TestGuest g)
    {
        s[Gpr.R11] = 0;
        for (int i = 0; i < results.Length; i++) s[Gpr.R11] = s[Gpr.R11] * 31 + results[i];
        s[Gpr.R12] = g.LoggedRip;
        return s;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Div_runs_translated_with_the_interpreters_results_and_faults(bool wide)
    {
        var off = Run(JitMode.Off, wide);
        var on = Run(JitMode.Forced, wide);
        foreach (var r in new[] { Gpr.Rax, Gpr.Rdx, Gpr.R8, Gpr.R9, Gpr.R10, Gpr.R11, Gpr.R12 })
            Assert.True(off.State[r] == on.State[r], $"{r}: 0x{off.State[r]:x} vs translated 0x{on.State[r]:x}");
        Assert.True(on.Cpu.JitEntries > 0, "nothing ran translated");
    }
}
