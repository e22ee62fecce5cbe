using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// MXCSR semantics the differential suite cannot reach (the host side must keep every exception masked):
/// unmasked SIMD exceptions, their priority, and a few SDM-known masked results.
/// </summary>
public class SseMxcsrTests
{
    private const ulong Data = 0x40000, MxcsrIn = Data + 0x100, MxcsrOut = Data + 0x104;
    private const uint IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32;

    /// <summary>Loads xmm0/xmm1 from Data/Data+16, sets MXCSR, runs <paramref name="op"/>, stores MXCSR and xmm0, halts.</summary>
    private static TestGuest Run(uint mxcsr, double[] x0, double[] x1, Action<Iced.Intel.Assembler> op, bool osxmmexcpt = true)
    {
        var g = new TestGuest();
        g.Memory.Write(Data, x0[0]); g.Memory.Write(Data + 8, x0[1]);
        g.Memory.Write(Data + 16, x1[0]); g.Memory.Write(Data + 24, x1[1]);
        g.Memory.Write(MxcsrIn, mxcsr);
        g.Load64(a =>
        {
            if (!osxmmexcpt)
            {
                a.mov(rax, cr4);
                a.and(rax, ~0x400);
                a.mov(cr4, rax);
            }
            a.movupd(xmm0, __xmmword_ptr[Data]);
            a.movupd(xmm1, __xmmword_ptr[Data + 16]);
            a.ldmxcsr(__dword_ptr[MxcsrIn]);
            op(a);
            a.stmxcsr(__dword_ptr[MxcsrOut]);
            a.movupd(__xmmword_ptr[Data + 32], xmm0);
            a.hlt();
        });
        return g;
    }

    private static ulong Bits(double d) => BitConverter.DoubleToUInt64Bits(d);

    [Fact]
    public void Unmasked_divide_by_zero_raises_xm_and_leaves_the_destination()
    {
        using var g = Run(0x1F80 & ~0x200u, [1.0, 7.0], [0.0, 1.0], a => a.divsd(xmm0, xmm1));
        var s = g.RunToHalt();
        Assert.Equal(19UL, g.LoggedVector);
        Assert.Equal(new byte[] { 0xF2, 0x0F, 0x5E, 0xC1 }, g.Memory.GetReadOnlySpan(g.LoggedRip, 4).ToArray()); // RIP of the DIVSD
        Assert.Equal(ZE, s.Fpu.Mxcsr & 0x3F);
        Assert.Equal(1.0, BitConverter.ToDouble(s.Fpu.Xmm, 0));
    }

    [Fact]
    public void Unmasked_exception_without_osxmmexcpt_raises_ud()
    {
        using var g = Run(0x1F80 & ~0x200u, [1.0, 7.0], [0.0, 1.0], a => a.divsd(xmm0, xmm1), osxmmexcpt: false);
        var s = g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(ZE, s.Fpu.Mxcsr & 0x3F);
    }

    [Fact]
    public void Unmasked_precomputation_exception_suppresses_postcomputation_flags()
    {
        // Lane 0: 1/0 (ZE), lane 1: 1/3 (PE). ZE is unmasked, so the inexact lane is never evaluated for PE.
        using var g = Run(0x1F80 & ~0x200u & ~0x1000u, [1.0, 1.0], [0.0, 3.0], a => a.divpd(xmm0, xmm1));
        var s = g.RunToHalt();
        Assert.Equal(19UL, g.LoggedVector);
        Assert.Equal(ZE, s.Fpu.Mxcsr & 0x3F);
    }

    [Fact]
    public void Unmasked_precision_exception_sets_every_flag_it_found()
    {
        // 1/0 in lane 0 is masked (ZE flagged), 1/3 in lane 1 raises the unmasked PE: both flags end up set.
        using var g = Run(0x1F80 & ~0x1000u, [1.0, 1.0], [0.0, 3.0], a => a.divpd(xmm0, xmm1));
        var s = g.RunToHalt();
        Assert.Equal(19UL, g.LoggedVector);
        Assert.Equal(ZE | PE, s.Fpu.Mxcsr & 0x3F);
        Assert.Equal(1.0, BitConverter.ToDouble(s.Fpu.Xmm, 8));
    }

    [Fact]
    public void Masked_flags_are_sticky_and_rounding_control_is_honoured()
    {
        // RC = up: 1/3 and 2/3 (nearest doubles lie below them) round to the next double; PE joins the IE already set.
        using var g = Run(0x1F80 | (2u << 13) | IE, [1.0, 2.0], [3.0, 3.0], a => a.divpd(xmm0, xmm1));
        g.RunToHalt();
        Assert.Equal(0UL, g.ExceptionCount);
        Assert.Equal(0x1F80 | (2u << 13) | IE | PE, g.Memory.Read<uint>(MxcsrOut));
        Assert.Equal(Bits(1.0 / 3.0) + 1, g.Memory.Read<ulong>(Data + 32));
        Assert.Equal(Bits(2.0 / 3.0) + 1, g.Memory.Read<ulong>(Data + 40));
        // The host thread is back on round-to-nearest.
        double three = g.Memory.Read<double>(Data + 16);
        Assert.Equal(0x3FD5_5555_5555_5555UL, Bits(1.0 / three));
    }

    [Fact]
    public void Flush_to_zero_and_denormals_are_zero()
    {
        double tiny = 1e-200;
        using (var g = Run(0x1F80 | 0x8000, [tiny, 1.0], [tiny, 1.0], a => a.mulsd(xmm0, xmm1)))
        {
            g.RunToHalt();
            Assert.Equal(0UL, g.Memory.Read<ulong>(Data + 32));
            Assert.Equal(UE | PE, g.Memory.Read<uint>(MxcsrOut) & 0x3F);
        }
        double denormal = BitConverter.UInt64BitsToDouble(1);
        using (var g = Run(0x1F80 | 0x40, [denormal, 0], [1.0, 0], a => a.addsd(xmm0, xmm1)))
        {
            g.RunToHalt();
            Assert.Equal(1.0, g.Memory.Read<double>(Data + 32)); // exact: the denormal counted as zero, no PE, no DE
            Assert.Equal(0u, g.Memory.Read<uint>(MxcsrOut) & 0x3F);
        }
        using (var g = Run(0x1F80, [denormal, 0], [1.0, 0], a => a.addsd(xmm0, xmm1)))
        {
            g.RunToHalt();
            Assert.Equal(DE | PE, g.Memory.Read<uint>(MxcsrOut) & 0x3F);
        }
    }

    [Fact]
    public void Comisd_signals_on_qnan_and_ucomisd_does_not()
    {
        using (var g = Run(0x1F80, [double.NaN, 0], [1.0, 0], a => a.comisd(xmm0, xmm1)))
        {
            var s = g.RunToHalt();
            Assert.Equal(IE, g.Memory.Read<uint>(MxcsrOut) & 0x3F);
            Assert.Equal(0x45UL, s.Rflags & 0x8D5); // unordered: ZF PF CF
        }
        using (var g = Run(0x1F80, [double.NaN, 0], [1.0, 0], a => a.ucomisd(xmm0, xmm1)))
        {
            g.RunToHalt();
            Assert.Equal(0u, g.Memory.Read<uint>(MxcsrOut) & 0x3F);
        }
    }

    [Fact]
    public void Conversions_use_the_rounding_mode_and_flag_invalid_results()
    {
        using var g = Run(0x1F80 | (1u << 13), [2.5, 0], [double.NaN, 0], a =>
        {
            a.cvtsd2si(rbx, xmm0);     // RC = down: 2
            a.cvttsd2si(rcx, xmm1);    // NaN: integer indefinite, IE
            a.mov(rdx, -3);
            a.cvtsi2sd(xmm2, rdx);     // exact, no flag
        });
        var s = g.RunToHalt();
        Assert.Equal(2UL, s[Gpr.Rbx]);
        Assert.Equal(0x8000_0000_0000_0000UL, s[Gpr.Rcx]);
        Assert.Equal(IE | PE, g.Memory.Read<uint>(MxcsrOut) & 0x3F);
        Assert.Equal(-3.0, BitConverter.ToDouble(s.Fpu.Xmm, 32));
    }

    [Fact]
    public void Cleared_flags_are_raised_again_and_exact_results_raise_none()
    {
        // feclearexcept-style: PE from the first division, cleared by LDMXCSR, an exact ADDSD (no flag) stored,
        // then PE again. The thunks' fast path leaves the first PE in the host's MXCSR; it must not leak.
        using var g = new TestGuest();
        g.Memory.Write(Data, 1.0);
        g.Memory.Write(Data + 8, 3.0);
        g.Memory.Write(MxcsrIn, 0x1F80u);
        g.Load64(a =>
        {
            a.movsd(xmm0, __qword_ptr[Data]);
            a.divsd(xmm0, __qword_ptr[Data + 8]);
            a.stmxcsr(__dword_ptr[MxcsrOut]);
            a.ldmxcsr(__dword_ptr[MxcsrIn]);
            a.movsd(xmm1, __qword_ptr[Data]);
            a.addsd(xmm1, __qword_ptr[Data + 8]);
            a.stmxcsr(__dword_ptr[MxcsrOut + 4]);
            a.divsd(xmm1, __qword_ptr[Data + 8]);
            a.stmxcsr(__dword_ptr[MxcsrOut + 8]);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(0x1F80u | PE, g.Memory.Read<uint>(MxcsrOut));
        Assert.Equal(0x1F80u, g.Memory.Read<uint>(MxcsrOut + 4));
        Assert.Equal(0x1F80u | PE, g.Memory.Read<uint>(MxcsrOut + 8));
    }
}
