using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// REP STOS and REP MOVS run page-sized stretches as one host fill or copy where the TLB already maps plain RAM:
/// the registers and memory must be exactly those of an element-by-element run, including at a fault, over
/// overlapping ranges, over cached code and while dirty logging is on.
/// </summary>
public class RepStringBulkTests
{
    [Fact]
    public void Rep_stos_of_every_size_fills_exactly_and_leaves_rcx_and_rdi_as_element_wise()
    {
        using var g = new TestGuest();
        var junk = new byte[0x8000];
        new Random(7).NextBytes(junk);
        g.Memory.Write(0x200000UL, junk);
        g.Load64(a =>
        {
            a.cld();
            a.mov(rdi, 0x200003); a.mov(rax, 0x1122334455667788); a.mov(ecx, 3000); // crosses pages, unaligned
            a.rep.stosq();
            a.mov(r8, rdi); a.mov(r9, rcx);
            a.mov(rdi, 0x206001); a.mov(ecx, 5000);
            a.rep.stosb();
            a.mov(r10, rdi);
            a.mov(rdi, 0x205002); a.mov(ecx, 700);
            a.rep.stosw();
            a.mov(rdi, 0x204FFE); a.mov(ecx, 1); // one dword straddling a page end
            a.rep.stosd();
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x200003UL + 3000 * 8, s[Gpr.R8]);
        Assert.Equal(0UL, s[Gpr.R9]);
        Assert.Equal(0x206001UL + 5000, s[Gpr.R10]);
        var expect = (byte[])junk.Clone();
        void Put(int at, ulong v, int size, int count)
        {
            for (int i = 0; i < count; i++)
                for (int b = 0; b < size; b++) expect[at + i * size + b] = (byte)(v >> (b * 8));
        }
        Put(0x3, 0x1122334455667788, 8, 3000);
        Put(0x6001, 0x88, 1, 5000);
        Put(0x5002, 0x7788, 2, 700);
        Put(0x4FFE, 0x55667788, 4, 1);
        var got = new byte[junk.Length];
        g.Memory.Read(0x200000, got);
        Assert.Equal(expect, got);
    }

    [Fact]
    public void Rep_stos_into_an_unmapped_page_faults_with_the_registers_at_that_element()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(__qword_ptr[TestGuest.Pt + 0x52 * 8], 0); // page 0x52000 not present
            a.invlpg(__[0x52000]);
            a.mov(__qword_ptr[0x50000], 0);             // the first pages are in the TLB
            a.mov(__qword_ptr[0x51000], 0);
            a.cld();
            a.mov(rdi, 0x50008); a.mov(rax, -1); a.mov(ecx, 0x1000);
            a.rep.stosq();
            a.hlt();
        });
        g.RunToHalt();
        var s = g.Cpu.GetState();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x52000UL, s.Cr2);
        Assert.Equal(0x52000UL, s[Gpr.Rdi]);
        Assert.Equal(0x1000UL - (0x52000 - 0x50008) / 8, s[Gpr.Rcx]);
        Assert.Equal(ulong.MaxValue, g.Memory.Read<ulong>(0x51FF8));
        Assert.Equal(0UL, g.Memory.Read<ulong>(0x50000));
    }

    [Fact]
    public void Overlapping_forward_rep_movs_replicates_like_element_wise_copies()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x200000UL, new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 });
        g.Load64(a =>
        {
            a.cld();
            a.mov(rsi, 0x200000); a.mov(rdi, 0x200003); a.mov(ecx, 5000);
            a.rep.movsb();                              // each byte copies one written 3 bytes earlier
            a.mov(rsi, 0x300000); a.mov(rdi, 0x308000); a.mov(ecx, 1000);
            a.rep.movsq();                              // disjoint: one block copy
            a.hlt();
        });
        g.Memory.Write(0x300000UL, Enumerable.Range(0, 8000).Select(i => (byte)(i * 7)).ToArray());
        var s = g.RunToHalt();
        var got = new byte[5003];
        g.Memory.Read(0x200000, got);
        for (int i = 0; i < got.Length; i++) Assert.Equal((byte)(i % 3 + 1), got[i]);
        var copy = new byte[8000];
        g.Memory.Read(0x308000, copy);
        Assert.Equal(Enumerable.Range(0, 8000).Select(i => (byte)(i * 7)).ToArray(), copy);
        Assert.Equal(0x308000UL + 8000, s[Gpr.Rdi]);
        Assert.Equal(0x300000UL + 8000, s[Gpr.Rsi]);
    }

    [Fact]
    public void Rep_stos_over_cached_code_is_seen_by_the_next_call()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x30000UL, new byte[] { 0xB8, 1, 0, 0, 0, 0xC3 }); // mov eax, 1; ret
        g.Load64(a =>
        {
            a.mov(rsi, 0x30000);
            a.call(rsi);
            a.mov(r8, rax);
            a.mov(__qword_ptr[0x30800], 0);  // a write TLB entry for the page (the store goes the slow way: code)
            a.cld();
            a.mov(rdi, 0x30000); a.mov(al, 0xC3); a.mov(ecx, 0x1000); // the whole page becomes RET
            a.rep.stosb();
            a.mov(eax, 7);
            a.call(rsi);
            a.mov(r9, rax);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R8]);
        Assert.Equal(7UL, s[Gpr.R9]);
    }

    [Fact]
    public void Rep_stos_and_movs_mark_every_page_they_write_while_dirty_logging()
    {
        using var g = new TestGuest();
        var dirty = g.Memory.Regions[0].Dirty;
        dirty.Enabled = true;
        g.Load64(a =>
        {
            a.cld();
            a.mov(rdi, 0x400000); a.xor(eax, eax); a.mov(ecx, 4 * 512);
            a.rep.stosq();                            // 0x400000..0x403FFF
            a.mov(rsi, 0x400000); a.mov(rdi, 0x500800); a.mov(ecx, 3 * 512);
            a.rep.movsq();                            // 0x500800..0x5037FF
            a.hlt();
        });
        g.RunToHalt();
        var bits = new ulong[dirty.WordCount];
        dirty.Harvest(bits);
        bool Dirty(ulong page) => (bits[(int)(page / 64)] & (1UL << (int)(page % 64))) != 0;
        for (ulong p = 0x400; p < 0x404; p++) Assert.True(Dirty(p), $"page 0x{p:x}000 not logged");
        for (ulong p = 0x500; p < 0x504; p++) Assert.True(Dirty(p), $"page 0x{p:x}000 not logged");
        Assert.False(Dirty(0x404));
        Assert.False(Dirty(0x504));
    }
}
