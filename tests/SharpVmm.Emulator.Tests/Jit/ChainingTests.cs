using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Jit;

/// <summary>
/// Translated blocks jumping straight into each other: through patched slots within a page, through the native
/// jump cache across pages and for returns; and every way such a chain must be cut (rewritten code, a remapped
/// page, a kick, another vCPU rewriting the code).
/// </summary>
public class ChainingTests
{
    private const ulong Page2 = TestGuest.CodeBase + 0x1000;

    private static void Put(TestGuest g, ulong at, Action<Assembler> code)
    {
        var a = new Assembler(64);
        code(a);
        g.Memory.Write(at, TestGuest.Assemble(a, at));
    }

    /// <summary>A loop over four blocks in one page (a JCC both ways, a JMP) that calls a routine in the next page.</summary>
    private static (VcpuState State, X86Cpu Cpu) RunBlockLoop(JitMode mode)
    {
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        Put(g, Page2, a =>
        {
            a.xor(rdx, rax);
            a.lea(rdx, __[rdx + rcx * 2]);
            a.ret();
        });
        g.Load64(a =>
        {
            var top = a.CreateLabel();
            var even = a.CreateLabel();
            var join = a.CreateLabel();
            a.mov(ecx, 3000);
            a.xor(eax, eax);
            a.xor(ebx, ebx);
            a.xor(edx, edx);
            a.Label(ref top);
            a.add(rax, rcx);
            a.test(cl, 1);
            a.jz(even);
            a.add(rbx, 3);
            a.jmp(join);
            a.Label(ref even);
            a.sub(rbx, 1);
            a.Label(ref join);
            a.call(Page2);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        var s = g.RunToHalt();
        return (s, (X86Cpu)g.Cpu);
    }

    [Theory]
    [InlineData(JitMode.Forced)]
    [InlineData(JitMode.On)]
    public void A_loop_over_several_blocks_runs_chained_with_the_interpreters_results(JitMode mode)
    {
        var off = RunBlockLoop(JitMode.Off);
        var on = RunBlockLoop(mode);
        for (int r = 0; r < 16; r++) Assert.True(off.State.Gprs[r] == on.State.Gprs[r], $"GPR {r}: 0x{off.State.Gprs[r]:x} vs 0x{on.State.Gprs[r]:x}");
        Assert.Equal(off.State.Rip, on.State.Rip);
        Assert.Equal(off.State.Rflags, on.State.Rflags);
        Assert.Equal(off.Cpu.Retired, on.Cpu.Retired);
        // 3000 passes of 4-5 blocks each: nearly all block transitions stay in generated code.
        Assert.True(on.Cpu.JitChained > 10_000, $"{on.Cpu.JitChained} chained transitions");
        Assert.True(on.Cpu.JitEntries < 1_000, $"{on.Cpu.JitEntries} entries from the dispatcher");
        Assert.True(on.Cpu.JitRetired > on.Cpu.Retired * 9 / 10, $"only {on.Cpu.JitRetired} of {on.Cpu.Retired} instructions ran translated");
    }

    [Theory]
    [InlineData(JitMode.Forced)]
    [InlineData(JitMode.On)]
    [InlineData(JitMode.Off)]
    public void Rewriting_a_chain_target_cuts_the_chain_and_the_new_code_runs(JitMode mode)
    {
        // Page 2 holds A (JMP B) and B (ADD RAX, imm8; JMP back to page 1): the loop reaches A through the native
        // jump cache and A reaches B through a chain slot. Halfway, page 1 rewrites B's immediate from 1 to 5.
        const ulong b = Page2 + 0x40;
        const ulong top = TestGuest.CodeBase + 0x100, back = TestGuest.CodeBase + 0x200;
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        Put(g, top, a =>
        {
            var skip = a.CreateLabel();
            a.cmp(ecx, 50);
            a.jne(skip);
            a.mov(__byte_ptr[b + 3], 5);
            a.Label(ref skip);
            a.jmp(Page2);
        });
        Put(g, back, a =>
        {
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        g.Load64(a =>
        {
            a.xor(eax, eax);
            a.mov(ecx, 100);
            a.jmp(top);
        });
        Put(g, Page2, a =>
        {
            a.nop();
            a.jmp(b);
        });
        Put(g, b, a =>
        {
            a.db(0x48, 0x83, 0xC0, 0x01); // ADD RAX, imm8 (at b + 3)
            a.jmp(back);
        });
        var s = g.RunToHalt();
        Assert.Equal(50UL * 1 + 50UL * 5, s.Gprs[0]);
        var cpu = (X86Cpu)g.Cpu;
        if (mode != JitMode.Off) Assert.True(cpu.JitChained > 50, $"{cpu.JitChained} chained transitions");
    }

    [Theory]
    [InlineData(JitMode.Forced)]
    [InlineData(JitMode.On)]
    public void A_page_remapped_under_a_chained_call_runs_its_new_code(JitMode mode)
    {
        // Linear page L maps to physical page Pa (ADD RAX, 1) and, after a PTE write and INVLPG halfway, to Pb
        // (ADD RAX, 100); the routine has an internal jump (a chain slot) and is called through the jump cache.
        const ulong l = 0x1F0000, pa = 0x30000, pb = 0x31000;
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        foreach (var (phys, add) in new[] { (pa, 1), (pb, 100) })
        {
            Put(g, phys, a =>
            {
                var next = a.CreateLabel();
                a.add(rax, add);
                a.jmp(next);
                a.db(0xCC, 0xCC, 0xCC, 0xCC);
                a.Label(ref next);
                a.ret();
            });
        }
        ulong pte = TestGuest.Pt + (l >> 12) * 8;
        g.Memory.Write(pte, pa | 7);
        g.Load64(a =>
        {
            var top = a.CreateLabel();
            var skip = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 100);
            a.Label(ref top);
            a.cmp(ecx, 50);
            a.jne(skip);
            a.mov(rdx, pb | 7);
            a.mov(__qword_ptr[pte], rdx);
            a.invlpg(__[l]);
            a.Label(ref skip);
            a.call(l);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(50UL * 1 + 50UL * 100, s.Gprs[0]);
        Assert.True(((X86Cpu)g.Cpu).JitChained > 50, $"{((X86Cpu)g.Cpu).JitChained} chained transitions");
    }

    [Fact]
    public void A_kick_reaches_a_vcpu_spinning_in_a_chained_loop()
    {
        using var g = new TestGuest(options: new EmuOptions { Jit = JitMode.Forced });
        g.Load64(a =>
        {
            var top = a.CreateLabel();
            var mid = a.CreateLabel();
            a.Label(ref top);
            a.inc(rax);
            a.jmp(mid);
            a.db(0xCC, 0xCC);
            a.Label(ref mid);
            a.inc(rbx);
            a.jmp(top);
        });
        VcpuExit exit = default;
        var t = new Thread(() => exit = g.Cpu.Run());
        t.Start();
        var cpu = (X86Cpu)g.Cpu;
        var until = DateTime.UtcNow.AddSeconds(30);
        while (Volatile.Read(ref cpu.JitChained) < 10_000 && DateTime.UtcNow < until) Thread.Sleep(10);
        cpu.Kick();
        bool stopped = t.Join(TimeSpan.FromSeconds(30));
        Assert.True(stopped, "the kick did not stop the vCPU");
        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.True(cpu.JitChained >= 10_000, $"{cpu.JitChained} chained transitions before the kick");
        var s = g.Cpu.GetState();
        Assert.True(s.Gprs[0] - s.Gprs[3] <= 1, $"RAX {s.Gprs[0]} RBX {s.Gprs[3]}: the loop stopped between its blocks' instructions");
    }

    [Theory]
    [InlineData(JitMode.Forced)]
    [InlineData(JitMode.On)]
    public void Another_vcpu_rewriting_a_page_the_first_runs_chained_takes_effect(JitMode mode)
    {
        // vCPU 0 spins in page 2 (MOV EAX, 0 / TEST / JZ back, over two chained blocks) until its own MOV's
        // immediate becomes 1; vCPU 1 writes that byte.
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        const ulong l1 = Page2, l2 = Page2 + 0x20, writer = Page2 + 0x1000;
        Put(g, l1, a =>
        {
            a.mov(eax, 0); // B8 imm32 (at l1 + 1)
            a.jmp(l2);
        });
        Put(g, l2, a =>
        {
            a.inc(rbx);
            a.test(eax, eax);
            a.jz(l1);
            a.hlt();
        });
        Put(g, writer, a =>
        {
            a.mov(__byte_ptr[l1 + 1], 1);
            a.hlt();
        });
        g.Load64(a => a.jmp(l1));
        using var cpu1 = g.Accel.CreateVcpu(1);
        cpu1.SetState(TestGuest.LongModeState(writer));
        VcpuExit exit = default;
        var t = new Thread(() => exit = g.Cpu.Run());
        t.Start();
        var cpu0 = (X86Cpu)g.Cpu;
        var until = DateTime.UtcNow.AddSeconds(30);
        while (Volatile.Read(ref cpu0.JitChained) < 1_000 && DateTime.UtcNow < until) Thread.Sleep(10);
        Assert.True(Volatile.Read(ref cpu0.JitChained) >= 1_000, "vCPU 0 never ran chained");
        Assert.Equal(VcpuExitReason.Halt, cpu1.Run().Reason);
        bool stopped = t.Join(TimeSpan.FromSeconds(30));
        if (!stopped)
        {
            cpu0.Kick();
            t.Join();
        }
        Assert.True(stopped, "vCPU 0 kept running the old code");
        Assert.Equal(VcpuExitReason.Halt, exit.Reason);
        Assert.Equal(1UL, g.Cpu.GetState().Gprs[0]);
    }
}
