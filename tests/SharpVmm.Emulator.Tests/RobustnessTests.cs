using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;

namespace SharpVmm.Emulator.Tests;

public class RobustnessTests
{
    /// <summary>Random bytes as code, in kernel and user mode: the guest may fault, halt or shut down, but the emulator never fails.</summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    [InlineData(4, true)]
    [InlineData(5, false)]
    [InlineData(6, true)]
    public void Random_code_never_breaks_the_emulator(int seed, bool user)
    {
        using var g = new TestGuest();
        var rng = new Random(seed);
        var code = new byte[0x4000];
        rng.NextBytes(code);
        g.Load64(a => a.nop(), user: user);
        g.Memory.Write(TestGuest.CodeBase, code);
        for (int round = 0; round < 20; round++)
        {
            using var t = new Timer(_ => g.Cpu.Kick(), null, 20, Timeout.Infinite);
            var exit = g.Cpu.Run();
            Assert.True(exit.Reason is VcpuExitReason.Halt or VcpuExitReason.Shutdown or VcpuExitReason.Kicked, exit.ToString());
            // Restart somewhere else in the random bytes.
            var st = TestGuest.LongModeState(TestGuest.CodeBase + (ulong)rng.Next(code.Length - 16), user);
            g.Cpu.SetState(st);
            if (exit.Reason == VcpuExitReason.Shutdown) g.Memory.Write(TestGuest.CodeBase, code);
        }
    }
}
