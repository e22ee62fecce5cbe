using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;

namespace SharpVmm.Emulator.Tests.Jit;

/// <summary>
/// The same random guest under the interpreter alone and with every block translated: the registers and RFLAGS
/// (all of them: the translated forms have no undefined flags) stored at checkpoints all through the run, the
/// memory they wrote and the final state must be identical.
/// </summary>
public class LockStepTests
{
    private const ulong Log = 0x200000;
    private const int LogBytes = 0x4000;

    private static (VcpuState State, byte[] Log, Emulator.Jit.JitEngine? Jit) Run(int seed, JitMode mode, int threshold = EmuOptions.DefaultJitThreshold, int repeat = 1)
    {
        using var g = new TestGuest(options: new EmuOptions { Jit = mode, JitThreshold = threshold });
        g.Load64(a => new RandomProgram(seed).Emit(a, 160, Log));
        VcpuState s = default!;
        for (int i = 0; i < repeat; i++)
        {
            s = g.RunToHalt();
            // The program starts over from the same registers (it loads them itself), so its blocks get hot.
            if (i + 1 < repeat) { s.Rip = TestGuest.CodeBase; g.Cpu.SetState(s); }
        }
        var log = new byte[LogBytes];
        g.Memory.Read(Log, log);
        return (s, log, g.Accel.JitEngine);
    }

    public static TheoryData<int> Seeds()
    {
        var d = new TheoryData<int>();
        for (int i = 0; i < 40; i++) d.Add(i * 7919 + 1);
        return d;
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Forced_translation_leaves_every_checkpoint_as_the_interpreter(int seed)
    {
        var off = Run(seed, JitMode.Off);
        var on = Run(seed, JitMode.Forced);
        Compare(seed, off, on);
        Assert.True(on.Jit!.BlocksTranslated > 0, "nothing was translated");
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Hot_translation_after_a_threshold_matches_too(int seed)
    {
        var off = Run(seed, JitMode.Off, repeat: 4);
        var on = Run(seed, JitMode.On, threshold: 2, repeat: 4);
        Compare(seed, off, on);
    }

    private static void Compare(int seed, (VcpuState State, byte[] Log, Emulator.Jit.JitEngine? Jit) off, (VcpuState State, byte[] Log, Emulator.Jit.JitEngine? Jit) on)
    {
        for (int i = 0; i < off.Log.Length; i += 8)
        {
            ulong x = BitConverter.ToUInt64(off.Log, i), y = BitConverter.ToUInt64(on.Log, i);
            Assert.True(x == y, $"seed {seed}: log word {i / 8} (checkpoint {i / 128}, slot {i / 8 % 16}) interpreter 0x{x:x}, translated 0x{y:x}");
        }
        for (int r = 0; r < 16; r++)
            Assert.True(off.State.Gprs[r] == on.State.Gprs[r], $"seed {seed}: GPR {r} 0x{off.State.Gprs[r]:x} vs 0x{on.State.Gprs[r]:x}");
        Assert.Equal(off.State.Rip, on.State.Rip);
        Assert.Equal(off.State.Rflags, on.State.Rflags);
    }
}
