using Microsoft.Extensions.Logging;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Jit;
using SharpVmm.Emulator.Tests.Support;

namespace SharpVmm.Emulator.Tests.Jit;

/// <summary>Where translated code lives: RWX, else a memfd mapped twice, else nowhere (interpreter alone); and a full buffer.</summary>
public class CodeBufferTests
{
    private const ulong Log = 0x200000;

    private static (VcpuState State, byte[] Log) Run(EmuOptions options, out JitEngine? jit, int seed = 5, int repeat = 3, int count = 300, int checkpointEvery = 5)
    {
        using var g = new TestGuest(options: options);
        g.Load64(a => new RandomProgram(seed).Emit(a, count, Log, checkpointEvery));
        VcpuState s = default!;
        for (int i = 0; i < repeat; i++)
        {
            s = g.RunToHalt();
            if (i + 1 < repeat) { s.Rip = TestGuest.CodeBase; g.Cpu.SetState(s); }
        }
        var log = new byte[0x4000];
        g.Memory.Read(Log, log);
        jit = g.Accel.JitEngine;
        return (s, log);
    }

    private static void AssertSame((VcpuState State, byte[] Log) expected, (VcpuState State, byte[] Log) actual)
    {
        Assert.Equal(expected.Log, actual.Log);
        Assert.Equal(expected.State.Gprs, actual.State.Gprs);
        Assert.Equal(expected.State.Rflags, actual.State.Rflags);
        Assert.Equal(expected.State.Rip, actual.State.Rip);
    }

    [Fact]
    public void Rwx_is_used_where_the_host_allows_it()
    {
        var r = Run(new EmuOptions { Jit = JitMode.Forced }, out var jit);
        Assert.Equal(CodeBufferKind.Rwx, jit!.BufferKind);
        Assert.True(jit.BlocksTranslated > 0);
        AssertSame(Run(new EmuOptions { Jit = JitMode.Off }, out _), r);
    }

    [Fact]
    public void Refused_rwx_falls_back_to_a_double_mapping_that_runs_the_same_code()
    {
        var r = Run(new EmuOptions { Jit = JitMode.Forced, JitRefuseRwx = true }, out var jit);
        Assert.Equal(CodeBufferKind.DoubleMapped, jit!.BufferKind);
        Assert.True(jit.BlocksTranslated > 0);
        Assert.True(jit.CodeBytes > 0);
        AssertSame(Run(new EmuOptions { Jit = JitMode.Off }, out _), r);
    }

    [Fact]
    public void No_executable_memory_at_all_leaves_the_interpreter_with_one_log_line()
    {
        var log = new ListLogger();
        var r = Run(new EmuOptions { Jit = JitMode.Forced, JitRefuseRwx = true, JitRefuseDoubleMap = true, Logger = log }, out var jit);
        Assert.Equal(CodeBufferKind.None, jit!.BufferKind);
        Assert.False(jit.Available);
        Assert.Equal(0, jit.BlocksTranslated);
        var warnings = log.Entries.FindAll(e => e.Level >= LogLevel.Warning);
        Assert.Single(warnings);
        Assert.Contains("double mapping", warnings[0].Message, StringComparison.Ordinal);
        AssertSame(Run(new EmuOptions { Jit = JitMode.Off }, out _), r);
    }

    [Fact]
    public void A_full_code_buffer_is_flushed_and_refilled()
    {
        var r = Run(new EmuOptions { Jit = JitMode.Forced, JitCodeBytes = 4096 }, out var jit, repeat: 4, count: 2000, checkpointEvery: 31);
        Assert.True(jit!.BufferFlushes > 0, $"the 4 KiB buffer never filled ({jit.BlocksTranslated} blocks, {jit.CodeBytes} bytes)");
        Assert.True(jit.BlocksTranslated > 0);
        Assert.True(jit.BufferUsed <= 4096);
        AssertSame(Run(new EmuOptions { Jit = JitMode.Off }, out _, repeat: 4, count: 2000, checkpointEvery: 31), r);
    }

    [Fact]
    public void Jit_options_are_checked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new EmuOptions { JitThreshold = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new EmuOptions { JitCodeBytes = 100 });
        Assert.Equal(EmuOptions.DefaultJit, new EmuOptions().Jit);
    }
}
