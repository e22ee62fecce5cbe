using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Jit;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Jit;

/// <summary>Directed checks of the second tier: precise faults after a translated prefix, flags coming into a block, self-modifying code.</summary>
public class TranslatedBlockTests
{
    private const ulong Results = 0x200000;

    /// <summary>Translatable instructions of every form, in a fixed order, with varied flag writers last.</summary>
    private static readonly Action<Assembler>[] Prefix =
    [
        a => a.add(rcx, rdx),
        a => a.sub(esi, 0x7FFF_FFF0),
        a => a.adc(bl, ah),
        a => a.lea(r9, __[rcx + rsi * 8 - 0x40]),
        a => a.mov(__qword_ptr[0x60000], rcx),
        a => a.add(r9, __qword_ptr[0x60000]),
        a => a.xor(dx, 0x8001),
        a => a.movzx(r10d, bl),
        a => a.inc(r10d),
        a => a.and(rsi, -16),
        a => a.movsx(r11, cl),
        a => a.sbb(r11w, cx),
        a => a.neg(dh),
        a => a.mov(r12d, ecx),
        a => a.or(r12, r9),
        a => a.dec(r13),
        a => a.mov(r13b, (byte)0x80),
        a => a.not(r14d),
        a => a.movzx(r14d, __byte_ptr[0x60001]),
        a => a.mov(__dword_ptr[0x60ffe], 0x1234_5678), // crosses into the next page: the interpreter's slow path
        a => a.test(r14w, si),
        a => a.cmp(ecx, r12d),
        a => a.mov(r15, 0x1234_5678_9ABC_DEF0),
        a => a.add(r15d, -1),
        a => a.movsxd(rdi, r15d),
        a => a.sub(ch, 3),
        a => a.nop(),
        a => a.imul(r9, rcx),
        a => a.imul(edx, esi, 0x1234),
        a => a.imul(r10w, __word_ptr[0x60000]),
        a => a.shl(r11, cl),
        a => a.sar(r12d, cl),
        a => a.rol(r12, cl),
        a => a.ror(ebx, 5),
        a => a.add(__qword_ptr[0x60008], rcx),
        a => a.sub(__dword_ptr[0x6000c], 0x55),
        a => a.cmp(__byte_ptr[0x60001], 0x40),
        a => a.test(__qword_ptr[0x60000], rdx),
        a => a.inc(__word_ptr[0x60010]),
        a => a.not(__qword_ptr[0x60018]),
        a => a.@lock.add(__dword_ptr[0x60020], eax),
        a => a.@lock.xor(__dword_ptr[0x60022], ecx), // misaligned: the interpreter's locked path
        a => a.adc(__dword_ptr[0x60ffe], ecx),         // crosses a page: the interpreter's slow path
        a => a.push(rcx),
        a => a.push(0x1234),
        a => a.pop(r13),
        a => a.pop(r14),
        a =>
        {
            var l = a.CreateLabel();
            a.call(l);
            a.Label(ref l);
            a.pop(r15);
        },
        a =>
        {
            var l = a.CreateLabel();
            a.lea(r15, __[l]);
            a.push(r15);
            a.ret();
            a.Label(ref l);
            a.neg(r15);
        },
        a => a.bt(rcx, 63),
        a => a.bts(__qword_ptr[0x60030], 5),
        a => a.btr(__dword_ptr[0x60030], ecx),
        a =>
        {
            a.mov(r10, -70);
            a.@lock.btc(__qword_ptr[0x61000], r10); // a negative offset: the operand is in the page before
        },
        a => a.bswap(r9),
        a => a.bswap(r9d),
        a => a.cdqe(),
        a => a.cqo(),
        a => a.setne(__byte_ptr[0x60038]),
        a => a.cmpxchg(__dword_ptr[0x60040], r9d),
        a => a.@lock.xadd(__qword_ptr[0x60048], r10),
        a =>
        {
            a.mov(__qword_ptr[0x60050], 7);
            a.xor(edx, edx);
            a.div(__qword_ptr[0x60050]);
        },
        a =>
        {
            a.pushfq();
            a.pop(r11);
        },
        a =>
        {
            a.push(rbp);
            a.mov(rbp, rsp);
            a.push(rcx);
            a.leave();
        },
        a =>
        {
            var l = a.CreateLabel();
            a.lea(r12, __[l]);
            a.mov(__qword_ptr[0x60058], r12);
            a.call(__qword_ptr[0x60058]);
            a.Label(ref l);
            a.pop(r12);
        },
        a => a.shr(r13w, 3),
        a => a.rol(ch, cl),
        a => a.sar(dx, cl),
        a =>
        {
            a.mov(cl, 20); // a narrow shift by the operand's width or more: the interpreter's
            a.shl(al, cl);
        },
        a => a.ror(bx, 9),
        a => a.cmovne(r9, __qword_ptr[0x60000]),
        a => a.cmovb(r10d, __dword_ptr[0x60008]),
        a => a.xor(r8, r8),
    ];

    private static void Seed(Assembler a)
    {
        a.mov(rax, 0x0123_4567_89AB_CDEF);
        a.mov(rbx, 0xFEDC_BA98_7654_3210);
        a.mov(rcx, 0x8000_0000_0000_0001);
        a.mov(rdx, 0x7FFF_FFFF_FFFF_FFFF);
        a.mov(rsi, 0x0000_0000_FFFF_FFFF);
        a.mov(r13, 0x1_0000_0000);
        a.mov(r14, 0x5555_5555_AAAA_AAAA);
        a.stc();
        a.jmp(a.F); // the translated block starts at the next instruction
        a.AnonymousLabel();
    }

    private static (VcpuState State, ulong Vector, ulong Rip, ulong Flags, ulong Cr2, X86Cpu Cpu, JitEngine? Jit) FaultAfter(int k, JitMode mode)
    {
        using var g = new TestGuest(options: new EmuOptions { Jit = mode });
        g.Memory.Write(TestGuest.Pt + 0x50 * 8, 0UL); // unmap 0x50000
        g.Load64(a =>
        {
            Seed(a);
            for (int i = 0; i < k; i++) Prefix[i](a);
            a.mov(rbp, 0x50008);
            a.mov(rax, __qword_ptr[rbp]);
            a.hlt();
        });
        var s = g.RunToHalt();
        ulong frameFlags = g.Memory.Read<ulong>(g.LoggedRsp + 16);
        return (s, g.LoggedVector, g.LoggedRip, frameFlags, s.Cr2, (X86Cpu)g.Cpu, g.Accel.JitEngine);
    }

    [Fact]
    public void A_fault_after_every_prefix_length_is_delivered_precisely()
    {
        for (int k = 0; k <= Prefix.Length; k++)
        {
            var off = FaultAfter(k, JitMode.Off);
            var on = FaultAfter(k, JitMode.Forced);
            Assert.Equal(14UL, off.Vector);
            Assert.True(on.Vector == 14, $"k={k}: vector {on.Vector}");
            Assert.True(off.Rip == on.Rip, $"k={k}: fault RIP 0x{off.Rip:x} vs translated 0x{on.Rip:x}");
            Assert.True(off.Flags == on.Flags, $"k={k}: RFLAGS in the frame 0x{off.Flags:x} vs translated 0x{on.Flags:x}");
            Assert.Equal(0x50008UL, on.Cr2);
            for (int r = 0; r < 16; r++)
                Assert.True(off.State.Gprs[r] == on.State.Gprs[r], $"k={k}: GPR {r} 0x{off.State.Gprs[r]:x} vs 0x{on.State.Gprs[r]:x}");
            Assert.True(on.Cpu.JitEntries > 0, $"k={k}: translated code never ran");
            Assert.True(on.Cpu.JitPrefixExits > 0, $"k={k}: no block left its translated prefix for the interpreter");
        }
    }

    [Fact]
    public void A_block_that_starts_with_a_jcc_reads_the_flags_it_was_entered_with()
    {
        var flagSets = new List<int>();
        for (int f = 0; f < 64; f++)
            flagSets.Add(((f & 1) != 0 ? 0x1 : 0) | ((f & 2) != 0 ? 0x4 : 0) | ((f & 4) != 0 ? 0x10 : 0) | ((f & 8) != 0 ? 0x40 : 0) | ((f & 16) != 0 ? 0x80 : 0) | ((f & 32) != 0 ? 0x800 : 0));
        byte[] Run(JitMode mode)
        {
            using var g = new TestGuest(options: new EmuOptions { Jit = mode });
            g.Load64(a =>
            {
                int i = 0;
                for (int cc = 0; cc < 16; cc++)
                {
                    foreach (int f in flagSets)
                    {
                        var entry = a.CreateLabel();
                        var taken = a.CreateLabel();
                        var next = a.CreateLabel();
                        a.push(f | 2);
                        a.popfq();
                        a.jmp(entry);
                        a.Label(ref entry);
                        GuestCode.Jcc(a, cc, taken);
                        a.mov(__byte_ptr[Results + (ulong)i], 1);
                        a.jmp(next);
                        a.Label(ref taken);
                        a.mov(__byte_ptr[Results + (ulong)i], 2);
                        a.Label(ref next);
                        a.nop();
                        i++;
                    }
                }
                a.hlt();
            });
            g.RunToHalt();
            var r = new byte[16 * 64];
            g.Memory.Read(Results, r);
            return r;
        }
        var off = Run(JitMode.Off);
        var on = Run(JitMode.Forced);
        for (int cc = 0; cc < 16; cc++)
        {
            for (int j = 0; j < 64; j++)
            {
                int i = cc * 64 + j;
                bool expect = Holds(cc, flagSets[j]);
                Assert.True(off[i] == (expect ? 2 : 1), $"interpreter cc {cc} flags 0x{flagSets[j]:x}: {off[i]}");
                Assert.True(on[i] == (expect ? 2 : 1), $"translated cc {cc} flags 0x{flagSets[j]:x}: {on[i]}");
            }
        }
    }

    private static bool Holds(int cc, int f)
    {
        bool of = (f & 0x800) != 0, cf = (f & 1) != 0, zf = (f & 0x40) != 0, sf = (f & 0x80) != 0, pf = (f & 4) != 0;
        bool r = (cc >> 1) switch
        {
            0 => of,
            1 => cf,
            2 => zf,
            3 => cf || zf,
            4 => sf,
            5 => pf,
            6 => sf != of,
            _ => zf || sf != of,
        };
        return (cc & 1) != 0 ? !r : r;
    }


    private const ulong Routine = TestGuest.CodeBase + 0x800;

    [Theory]
    [InlineData(JitMode.Forced)]
    [InlineData(JitMode.On)]
    public void Rewriting_a_translated_block_takes_effect(JitMode mode)
    {
        // Routine: ADD RAX, imm8 (48 83 C0 ib); RET. Called 50 times, its immediate rewritten from 1 to 5, called 50 times more.
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 4 });
        g.InstallCommonHandlerTail();
        g.Memory.Write(Routine, new byte[] { 0x48, 0x83, 0xC0, 0x01, 0xC3 });
        g.Load64(a =>
        {
            var l1 = a.CreateLabel();
            var l2 = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 50);
            a.Label(ref l1);
            a.call(Routine);
            a.dec(ecx);
            a.jnz(l1);
            a.mov(__byte_ptr[Routine + 3], 5);
            a.mov(ecx, 50);
            a.Label(ref l2);
            a.call(Routine);
            a.dec(ecx);
            a.jnz(l2);
            a.hlt();
        });
        var jit = g.Accel.JitEngine!;
        var s = g.RunToHalt();
        Assert.Equal(50UL + 250UL, s.Gprs[0]);
        Assert.True(jit.BlocksTranslated >= 2, $"translated {jit.BlocksTranslated}: the routine was not translated before and after its rewrite");
    }

    [Theory]
    [InlineData(JitMode.Forced)]
    [InlineData(JitMode.On)]
    [InlineData(JitMode.Off)]
    public void A_block_rewriting_itself_runs_its_new_code(JitMode mode)
    {
        // The loop body adds an immediate to RAX, then stores a new immediate over the ADD it just ran (the store
        // is not translated: it ends the prefix, invalidates the block and the rest runs freshly decoded) and over
        // the ADD right after the store, which must then run with its new immediate at once.
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        g.Load64(a =>
        {
            var top = a.CreateLabel();
            var add1 = a.CreateLabel();
            var add2 = a.CreateLabel();
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.mov(ecx, 6);
            a.Label(ref top);
            a.nop();
            a.Label(ref add1);
            a.db(0x48, 0x83, 0xC0, 0x01); // ADD RAX, imm8 (at add1 + 3)
            a.lea(rbx, __[rcx + 0x10]);
            a.lea(rdi, __[add1]);
            a.mov(__byte_ptr[rdi + 3], bl);
            a.lea(rdi, __[add2]);
            a.mov(__byte_ptr[rdi + 3], cl);
            a.Label(ref add2);
            a.db(0x48, 0x83, 0xC2, 0x01); // ADD RDX, imm8 (at add2 + 3)
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        var s = g.RunToHalt();
        // RAX: 1, then 0x10 + 6, + 0x10 + 5, ... + 0x10 + 2 (each pass runs what the previous one wrote).
        ulong expectRax = 1;
        for (int c = 6; c >= 2; c--) expectRax += 0x10UL + (ulong)c;
        // RDX: each pass runs the immediate it has just written: 6 + 5 + ... + 1.
        Assert.Equal(expectRax, s.Gprs[0]);
        Assert.Equal(21UL, s.Gprs[2]);
    }
    [Theory]
    [InlineData(JitMode.Forced, false)]
    [InlineData(JitMode.Forced, true)]
    [InlineData(JitMode.On, false)]
    [InlineData(JitMode.On, true)]
    [InlineData(JitMode.Off, true)]
    public void A_read_modify_write_of_the_running_block_takes_effect_at_once(JitMode mode, bool locked)
    {
        // INC of the immediate of the ADD right after it, in the same block: the INC's write-TLB probe misses (a code
        // page is never in the write TLB), the interpreter runs it, drops the block, and the ADD runs its new bytes.
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        g.Load64(a =>
        {
            var top = a.CreateLabel();
            var add2 = a.CreateLabel();
            a.xor(edx, edx);
            a.mov(ecx, 6);
            a.lea(rdi, __[add2]);
            a.Label(ref top);
            a.add(rbx, rcx);
            if (locked) a.@lock.inc(__byte_ptr[rdi + 3]); else a.inc(__byte_ptr[rdi + 3]);
            a.Label(ref add2);
            a.db(0x48, 0x83, 0xC2, 0x01); // ADD RDX, imm8 (at add2 + 3)
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(2UL + 3 + 4 + 5 + 6 + 7, s.Gprs[2]);
    }
}
