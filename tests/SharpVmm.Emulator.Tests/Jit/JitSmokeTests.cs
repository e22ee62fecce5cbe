using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Jit;

/// <summary>The second tier translates a register loop and leaves the state the interpreter leaves.</summary>
public class JitSmokeTests
{
    private static VcpuState RunLoop(JitMode mode, out EmuAccelerator accel, out TestGuest guest)
    {
        guest = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = 2 });
        accel = guest.Accel;
        guest.Load64(a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, 1000);
            a.xor(eax, eax);
            a.mov(rbx, 0x1234_5678_9ABC_DEF0);
            a.Label(ref top);
            a.add(rax, rcx);
            a.xor(rbx, rax);
            a.lea(rdx, __[rbx + rcx * 4 + 0x10]);
            a.movzx(esi, dl);
            a.sub(ah, dl);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        return guest.RunToHalt();
    }

    [Fact]
    public void A_register_loop_runs_translated_and_ends_as_interpreted()
    {
        var off = RunLoop(JitMode.Off, out _, out var g1);
        var on = RunLoop(JitMode.On, out var accel, out var g2);
        try
        {
            for (int i = 0; i < 16; i++) Assert.Equal(off.Gprs[i], on.Gprs[i]);
            Assert.Equal(off.Rip, on.Rip);
            Assert.Equal(off.Rflags, on.Rflags);
            Assert.NotNull(accel.JitEngine);
            Assert.True(accel.JitEngine!.BlocksTranslated > 0, "nothing was translated");
            // The loop block runs up to 256 passes per entry: every pass is still counted.
            var c1 = (X86Cpu)g1.Cpu;
            var c2 = (X86Cpu)g2.Cpu;
            Assert.Equal(c1.Retired, c2.Retired);
            Assert.True(c2.JitRetired > c2.Retired * 9 / 10, $"only {c2.JitRetired} of {c2.Retired} instructions ran translated");
            Assert.True(c2.JitEntries < 100, $"{c2.JitEntries} entries for 1000 passes of a self-loop");
        }
        finally
        {
            g1.Dispose();
            g2.Dispose();
        }
    }
}
