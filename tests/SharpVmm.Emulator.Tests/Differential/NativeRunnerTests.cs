using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>The native runner against results known from the SDM, so a broken harness cannot pass as "emulator bug".</summary>
[Collection("Differential")]
public sealed class NativeRunnerTests(DiffFixture fx)
{
    private CpuSnapshot Run(CpuSnapshot input, Action<Assembler> body)
    {
        var a = new Assembler(64);
        body(a);
        var w = new ByteWriter();
        a.Assemble(w, fx.Native.CodeAddress);
        return fx.Native.Run(input, w.ToArray(), fx.Native.CodeAddress);
    }

    private CpuSnapshot Input(params (int Reg, ulong Value)[] regs)
    {
        var s = new CpuSnapshot();
        for (int i = 0; i < 16; i++) s.Gprs[i] = 0x1111_0000_0000_0000UL * (ulong)i + (ulong)i;
        s.Gprs[4] = fx.Native.StackTopAddress;
        foreach (var (r, v) in regs) s.Gprs[r] = v;
        return s;
    }

    [Fact]
    public void Add32_sets_OF_and_SF_on_signed_overflow_and_zero_extends()
    {
        var o = Run(Input((0, 0xFFFF_FFFF_7FFF_FFFF), (3, 1)), a => a.add(eax, ebx));
        Assert.Equal(0x8000_0000UL, o.Gprs[0]);
        Assert.Equal(CpuSnapshot.OF | CpuSnapshot.SF | CpuSnapshot.AF | CpuSnapshot.PF, o.Rflags & CpuSnapshot.StatusFlags);
    }

    [Fact]
    public void Add8_sets_CF_ZF_AF_on_wrap_and_keeps_upper_bits()
    {
        var o = Run(Input((0, 0x1234_5678_9ABC_DEFF), (3, 1)), a => a.add(al, bl));
        Assert.Equal(0x1234_5678_9ABC_DE00UL, o.Gprs[0]);
        Assert.Equal(CpuSnapshot.CF | CpuSnapshot.ZF | CpuSnapshot.AF | CpuSnapshot.PF, o.Rflags & CpuSnapshot.StatusFlags);
    }

    [Fact]
    public void Input_carry_reaches_SBB()
    {
        var i = Input((0, 0), (3, 0));
        i.Rflags = CpuSnapshot.CF;
        var o = Run(i, a => a.sbb(rax, rbx));
        Assert.Equal(ulong.MaxValue, o.Gprs[0]);
        Assert.Equal(CpuSnapshot.CF | CpuSnapshot.SF | CpuSnapshot.PF | CpuSnapshot.AF, o.Rflags & CpuSnapshot.StatusFlags);
    }

    [Fact]
    public void Every_register_round_trips_and_RSP_is_the_private_stack()
    {
        var i = Input();
        i.Rflags = CpuSnapshot.ZF | CpuSnapshot.OF;
        i.Mxcsr = 0x5F80; // round up
        for (int k = 0; k < 256; k++) i.Xmm[k] = (byte)(k * 7 + 3);
        var o = Run(i, a => a.nop());
        for (int r = 0; r < 16; r++)
            Assert.Equal(r == 4 ? fx.Native.StackTopAddress : i.Gprs[r], o.Gprs[r]);
        Assert.Equal(i.Rflags | 0x2, o.Rflags & ~0x200UL); // IF belongs to the host
        Assert.Equal(0x5F80u, o.Mxcsr);
        Assert.Equal(i.Xmm, o.Xmm);
    }

    [Fact]
    public void Stores_reach_the_data_buffer()
    {
        fx.Native.Data.Clear();
        var o = Run(Input((0, 0x0102_0304_0506_0708), (3, fx.Native.DataAddress + 0x100)), a => a.mov(__qword_ptr[rbx + 8], rax));
        int at = (int)(fx.Native.DataAddress - fx.Native.ComparedAddress) + 0x108;
        Assert.Equal(0x0102_0304_0506_0708UL, BitConverter.ToUInt64(fx.Native.Data[at..(at + 8)]));
        Assert.Equal(0x0102_0304_0506_0708UL, o.Gprs[0]);
    }

    [Fact]
    public void DF_set_by_the_sequence_is_reported_and_cleared_for_the_host()
    {
        var o = Run(Input(), a => a.std());
        Assert.NotEqual(0UL, o.Rflags & CpuSnapshot.DF);
        // the host survived with DF clear: a block copy in managed code still goes forward
        byte[] src = [.. Enumerable.Range(0, 64).Select(x => (byte)x)], dst = new byte[64];
        src.CopyTo(dst, 0);
        Assert.Equal(src, dst);
        var o2 = Run(Input(), a => a.nop());
        Assert.Equal(0UL, o2.Rflags & CpuSnapshot.DF);
    }

    [Fact]
    public void Paddd_adds_lanes_with_wraparound()
    {
        var i = Input();
        BitConverter.TryWriteBytes(i.Xmm.AsSpan(0), 0xFFFF_FFFF_0000_0001UL);
        BitConverter.TryWriteBytes(i.Xmm.AsSpan(8), 0x7FFF_FFFF_0000_0002UL);
        BitConverter.TryWriteBytes(i.Xmm.AsSpan(16), 0x0000_0001_0000_0003UL);
        BitConverter.TryWriteBytes(i.Xmm.AsSpan(24), 0x0000_0001_0000_0004UL);
        var o = Run(i, a => a.paddd(xmm0, xmm1));
        Assert.Equal(0x0000_0000_0000_0004UL, o.XmmLow(0));
        Assert.Equal(0x8000_0000_0000_0006UL, o.XmmHigh(0));
    }

    [Fact]
    public void Every_class_generates_valid_cases_on_the_host()
    {
        // The generators themselves, without the emulator: every case must build, run and come back.
        foreach (var name in InstructionClasses.Names)
        {
            var cls = InstructionClasses.Create(name);
            if ((cls.HostRequires & ~fx.HostFeatures) != 0) continue;
            cls.Restrict(fx.HostFeatures);
            int count = 0;
            for (int k = 0; k < 100; k++)
            {
                var c = fx.Builder.Build(cls, DiffRandom.CaseSeed(cls.BaseSeed ^ 0x5EED, k), k);
                Assert.NotEmpty(c.Instructions);
                Assert.Equal(0xF4, c.Code[^1]);
                if (name != "Stack") Assert.Equal(fx.Native.StackTopAddress, c.Expected.Gprs[4]);
                count += c.Instructions.Count;
            }
            Assert.True(count >= 100, $"{name}: only {count} instructions in 100 cases");
        }
    }

    [Fact]
    public void Whole_sequences_replayed_on_the_host_match_their_step_by_step_build()
    {
        // Proves the state a step hands to the next is complete (registers, flags, XMM, MXCSR, memory) and that
        // the comparison finds nothing when both sides are the same CPU: the emulator is then the only variable.
        foreach (var name in InstructionClasses.Names)
        {
            var cls = InstructionClasses.Create(name);
            if ((cls.HostRequires & ~fx.HostFeatures) != 0) continue;
            cls.Restrict(fx.HostFeatures);
            for (int k = 0; k < 40; k++)
            {
                var c = fx.Builder.Build(cls, DiffRandom.CaseSeed(cls.BaseSeed ^ 0xABCD, k), k);
                if (c.FaultVector is not null)
                {
                    if (c.Steps.Count == 0) continue;
                    c = c.Prefix(c.Steps.Count); // the host must never run the faulting instruction
                }
                c.InitialData.CopyTo(fx.Native.Data);
                var whole = fx.Native.Run(c.Initial, c.Code.AsSpan(0, c.Code.Length - 1), c.CodeAddress);
                var asEmu = new EmuResult
                {
                    Exit = Core.Cpu.VcpuExit.Halt, State = whole, Rip = c.HltAddress + 1, Data = fx.Native.Data.ToArray(),
                };
                var diffs = DiffCompare.Differences(c, asEmu, cls);
                Assert.True(diffs.Count == 0, $"{name} case {k}:\n{c.Listing()}{string.Join("\n", diffs)}");
            }
        }
    }
}
