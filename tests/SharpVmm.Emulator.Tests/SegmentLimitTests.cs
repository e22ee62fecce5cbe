using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>Segment limit, type and null checks on data accesses in 32-bit protected mode.</summary>
public class SegmentLimitTests
{
    private const ushort Small = 0x40, ReadOnly = 0x48, ExpandDown = 0x50, SmallStack = 0x58;

    private static (uint Vector, uint Error, VcpuState State, Guest32 Guest) Run(Action<Assembler> code)
    {
        var g = new Guest32();
        g.G.Memory.Write(TestGuest.GdtBase + Small, 0x0040_9310_0000_0FFFUL);      // base 0x100000, limit 0xFFF
        g.G.Memory.Write(TestGuest.GdtBase + ReadOnly, 0x00CF_9100_0000_FFFFUL);   // flat, read-only
        g.G.Memory.Write(TestGuest.GdtBase + ExpandDown, 0x0040_9700_0000_0FFFUL); // expand-down above 0xFFF
        g.G.Memory.Write(TestGuest.GdtBase + SmallStack, 0x0046_9300_0000_FFFFUL); // limit 0x6FFFF
        var s = g.Run(a =>
        {
            code(a);
            a.mov(ecx, 99);
            a.hlt();
        }, gdtLimit: 0x5F);
        return (g.Vector, g.Error, s, g);
    }

    [Fact]
    public void Accesses_beyond_a_segment_limit_raise_gp_and_inside_use_the_base()
    {
        var (v, e, s, g) = Run(a =>
        {
            a.mov(ax, Small);
            a.mov(es, ax);
            a.mov(ecx, 1);
            a.mov(eax, 0x11223344);
            a.mov(__dword_ptr.es[0xFFC], eax);      // last four bytes inside the limit
            a.mov(ecx, 2);
            a.mov(ebx, __dword_ptr.es[0xFFD]);      // one byte past it
        });
        using (g)
        {
            Assert.Equal(13u, v);
            Assert.Equal(0u, e);
            Assert.Equal(2UL, s[Gpr.Rcx]);
            Assert.Equal(0x11223344u, g.G.Memory.Read<uint>(0x100FFC));
        }
    }

    [Fact]
    public void String_destination_is_checked_against_es()
    {
        var (v, _, s, g) = Run(a =>
        {
            a.mov(ax, Small);
            a.mov(es, ax);
            a.mov(esi, 0x5000);
            a.mov(edi, 0xFFC);
            a.mov(ecx, 1);
            a.movsd();
            a.mov(ecx, 2);
            a.movsd();                               // EDI = 0x1000
        });
        using (g)
        {
            Assert.Equal(13u, v);
            Assert.Equal(2UL, s[Gpr.Rcx]);
        }
    }

    [Fact]
    public void Writes_to_a_read_only_segment_raise_gp()
    {
        var (v, _, s, g) = Run(a =>
        {
            a.mov(ax, ReadOnly);
            a.mov(fs, ax);
            a.mov(ecx, 1);
            a.mov(eax, __dword_ptr.fs[0x100]);
            a.mov(ecx, 2);
            a.add(__dword_ptr.fs[0x100], eax);
        });
        using (g)
        {
            Assert.Equal(13u, v);
            Assert.Equal(2UL, s[Gpr.Rcx]);
        }
    }

    [Fact]
    public void Expand_down_segments_allow_only_offsets_above_the_limit()
    {
        var (v, _, s, g) = Run(a =>
        {
            a.mov(ax, ExpandDown);
            a.mov(gs, ax);
            a.mov(ecx, 1);
            a.mov(eax, __dword_ptr.gs[0x2000]);
            a.mov(ecx, 2);
            a.mov(eax, __dword_ptr.gs[0x800]);
        });
        using (g)
        {
            Assert.Equal(13u, v);
            Assert.Equal(2UL, s[Gpr.Rcx]);
        }
    }

    [Fact]
    public void Access_through_a_null_selector_raises_gp()
    {
        var (v, e, s, g) = Run(a =>
        {
            a.xor(eax, eax);
            a.mov(fs, ax);                           // loading null is fine
            a.mov(ecx, 1);
            a.mov(eax, __dword_ptr.fs[0]);
        });
        using (g)
        {
            Assert.Equal(13u, v);
            Assert.Equal(0u, e);
            Assert.Equal(1UL, s[Gpr.Rcx]);
        }
    }

    [Fact]
    public void Stack_segment_limit_violations_raise_ss()
    {
        var (v, e, s, g) = Run(a =>
        {
            a.mov(ax, SmallStack);
            a.mov(ss, ax);
            a.mov(esp, 0x60000);
            a.mov(ebp, 0x6FFFC);
            a.mov(ecx, 1);
            a.mov(eax, __dword_ptr[ebp]);            // SS-relative, last bytes inside
            a.push(eax);
            a.pop(eax);
            a.mov(ecx, 2);
            a.mov(eax, __dword_ptr[ebp + 2]);
        });
        using (g)
        {
            Assert.Equal(12u, v);
            Assert.Equal(0u, e);
            Assert.Equal(2UL, s[Gpr.Rcx]);
        }
    }

    [Fact]
    public void Reloading_flat_segments_turns_the_checks_off_again()
    {
        var (v, _, s, g) = Run(a =>
        {
            a.mov(ax, Small);
            a.mov(ds, ax);
            a.mov(ax, TestGuest.KernelDs);
            a.mov(ds, ax);
            a.mov(eax, __dword_ptr[0x200000]);       // far beyond the small limit: fine with a flat DS
        });
        using (g)
        {
            Assert.Equal(uint.MaxValue, v);
            Assert.Equal(99UL, s[Gpr.Rcx]);
        }
    }
}
