using System.Runtime.CompilerServices;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// The decoded-code cache's budget: going over it empties the cache, and guests must not notice (results,
/// self-modifying code, several vCPUs running while another one flushes).
/// </summary>
public class CodeCacheBudgetTests
{
    // Each function is its own block: "add rax, imm32; ret" at FunctionTable + i * FunctionStride.
    private const ulong FunctionTable = 0x100000;
    private const int FunctionStride = 16;
    private const int Functions = 3000;
    // A few dozen blocks' worth: a pass over the table flushes many times.
    private const long SmallBudget = 16 << 10;

    private static void WriteFunctions(TestGuest g)
    {
        var f = new byte[FunctionStride];
        for (int i = 0; i < Functions; i++)
        {
            f[0] = 0x48; f[1] = 0x05; // add rax, imm32
            BitConverter.TryWriteBytes(f.AsSpan(2), i + 1);
            f[6] = 0xC3;              // ret
            g.Memory.Write(FunctionTable + (ulong)(i * FunctionStride), f);
        }
    }

    private const ulong TableSum = (ulong)Functions * (Functions + 1) / 2;

    /// <summary>Calls every function <paramref name="rounds"/> times (rax accumulates), then halts.</summary>
    private static void CallTable(Iced.Intel.Assembler a, int rounds)
    {
        var outer = a.CreateLabel();
        var inner = a.CreateLabel();
        a.xor(eax, eax);
        a.mov(edi, rounds);
        a.Label(ref outer);
        a.mov(esi, (uint)FunctionTable);
        a.mov(ecx, Functions);
        a.Label(ref inner);
        a.call(rsi);
        a.add(rsi, FunctionStride);
        a.dec(ecx);
        a.jnz(inner);
        a.dec(edi);
        a.jnz(outer);
    }

    [Fact]
    public void An_op_is_40_bytes()
    {
        Assert.Equal(40, Unsafe.SizeOf<Op>());
    }

    [Fact]
    public void Budget_must_not_be_negative()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new EmuOptions { CodeCacheBudgetBytes = -1 });
        Assert.Equal(EmuOptions.DefaultCodeCacheBudgetBytes, new EmuOptions().CodeCacheBudgetBytes);
    }

    [Fact]
    public void A_guest_running_more_code_than_the_budget_gets_the_same_result_as_an_unbounded_cache()
    {
        ulong Run(long budget, out int flushes, out long used)
        {
            using var g = new TestGuest(options: new EmuOptions { CodeCacheBudgetBytes = budget });
            WriteFunctions(g);
            g.Load64(a => { CallTable(a, 3); a.hlt(); });
            var s = g.RunToHalt();
            flushes = g.Accel.CodeCacheFlushes;
            used = g.Accel.CachedCodeBytes;
            return s[Gpr.Rax];
        }

        ulong unbounded = Run(0, out int noFlushes, out long all);
        ulong bounded = Run(SmallBudget, out int flushes, out long used);
        Assert.Equal(3 * TableSum, unbounded);
        Assert.Equal(3 * TableSum, bounded);
        Assert.Equal(0, noFlushes);
        Assert.True(all > 10 * SmallBudget, $"the table should take far more than the budget, took {all} bytes");
        // Three passes over ~3000 blocks at ~70 blocks per fill.
        Assert.True(flushes > 3 * Functions / 100, $"expected many flushes, saw {flushes}");
        Assert.InRange(used, 1, SmallBudget);
    }

    [Fact]
    public void Code_rewritten_after_flushes_is_redecoded()
    {
        using var g = new TestGuest(options: new EmuOptions { CodeCacheBudgetBytes = SmallBudget });
        WriteFunctions(g);
        g.Load64(a =>
        {
            CallTable(a, 1);
            a.mov(r8, rax);
            // Double every function's immediate (each page was code before, dropped by a flush, and is code again).
            var patch = a.CreateLabel();
            a.mov(esi, (uint)FunctionTable);
            a.mov(ecx, Functions);
            a.Label(ref patch);
            a.mov(edx, __dword_ptr[rsi + 2]);
            a.add(edx, edx);
            a.mov(__dword_ptr[rsi + 2], edx);
            a.add(rsi, FunctionStride);
            a.dec(ecx);
            a.jnz(patch);
            CallTable(a, 1);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(TableSum, s[Gpr.R8]);
        Assert.Equal(2 * TableSum, s[Gpr.Rax]);
        Assert.True(g.Accel.CodeCacheFlushes > 0);
    }

    [Fact]
    public void Code_rewritten_in_the_running_block_right_after_a_flush_is_seen()
    {
        // The first call of the pass below flushes (the table was cached before); then the caller's own block,
        // decoded after the flush, patches the instruction after the store inside that same block.
        using var g = new TestGuest(options: new EmuOptions { CodeCacheBudgetBytes = SmallBudget });
        WriteFunctions(g);
        g.Load64(a =>
        {
            CallTable(a, 2);
            var patch = a.CreateLabel();
            a.lea(rbx, __[patch]);
            a.mov(__byte_ptr[rbx + 1], 0x22); // the immediate of the next mov
            a.Label(ref patch);
            a.mov(dl, 0x11);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(2 * TableSum, s[Gpr.Rax]);
        Assert.Equal(0x22UL, s[Gpr.Rdx] & 0xFF);
    }

    [Fact]
    public void Several_vcpus_keep_exact_results_while_they_flush_each_other()
    {
        using var g = new TestGuest(options: new EmuOptions { CodeCacheBudgetBytes = SmallBudget });
        WriteFunctions(g);
        const int rounds = 4;
        g.Load64(a =>
        {
            CallTable(a, rounds);
            a.@lock.add(__qword_ptr[0x40000], rax);
            a.hlt();
        });
        var start = g.Cpu.GetState();
        var others = new IVcpu[2];
        var exits = new VcpuExit[others.Length];
        var results = new ulong[others.Length];
        var threads = new Thread[others.Length];
        for (int i = 0; i < others.Length; i++)
        {
            others[i] = g.Accel.CreateVcpu(i + 1);
            var st = start;
            st[Gpr.Rsp] = 0x70000 - (ulong)i * 0x8000;
            others[i].SetState(st);
            int n = i;
            threads[n] = new Thread(() =>
            {
                exits[n] = others[n].Run();
                results[n] = others[n].GetState()[Gpr.Rax];
            });
        }
        foreach (var t in threads) t.Start();
        var s = g.RunToHalt();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromMinutes(2)), "a vCPU did not finish");
        try
        {
            Assert.Equal(rounds * TableSum, s[Gpr.Rax]);
            for (int i = 0; i < others.Length; i++)
            {
                Assert.Equal(VcpuExitReason.Halt, exits[i].Reason);
                Assert.Equal(rounds * TableSum, results[i]);
            }
            Assert.Equal(3 * rounds * TableSum, g.Memory.Read<ulong>(0x40000));
            Assert.True(g.Accel.CodeCacheFlushes > 0);
        }
        finally
        {
            foreach (var c in others) c.Dispose();
        }
    }

    [Fact]
    public void A_displacement_wider_than_32_bits_still_addresses_memory()
    {
        using var g = new TestGuest();
        // PML4 slot 1 aliases the low identity map at 512 GiB, so a moffs64 operand can reach RAM.
        const ulong alias = 0x80_0000_0000;
        g.Memory.Write(TestGuest.Pml4 + 8, TestGuest.Pdpt | 0x7UL);
        g.Memory.Write(0x40000UL, 0x1122_3344_5566_7788UL);
        g.Load64(a =>
        {
            a.mov(rax, __qword_ptr[alias + 0x40000]);  // movabs rax, [moffs64]
            a.mov(rbx, rax);
            a.not(rax);
            a.mov(__qword_ptr[alias + 0x40008], rax);  // movabs [moffs64], rax
            a.mov(al, __byte_ptr[alias + 0x40001]);    // movabs al, [moffs64]
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x1122_3344_5566_7788UL, s[Gpr.Rbx]);
        Assert.Equal(~0x1122_3344_5566_7788UL, g.Memory.Read<ulong>(0x40008));
        Assert.Equal(0x77UL, s[Gpr.Rax] & 0xFF);
    }
}
