using System.Diagnostics;
using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Io;
using SharpVmm.Emulator;
using SharpVmm.Memory;

namespace SharpVmm.Bench.Emulator;

/// <summary>A flat long-mode guest for emulator throughput runs: 4 KiB identity paging over the first 64 MiB.</summary>
internal sealed class EmuBenchGuest : IDisposable
{
    private const ulong Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000, PtBase = 0x100000, Gdt = 0x5000, Code = 0x10000;
    public const ulong DataBase = 0x400000;

    private readonly GuestMemory _memory;
    private readonly EmuAccelerator _accel;
    private readonly IVcpu _cpu;

    private sealed class NullBus : IIoBus
    {
        public void PioRead(ushort port, Span<byte> data) => data.Fill(0xFF);
        public void PioWrite(ushort port, ReadOnlySpan<byte> data) { }
        public void MmioRead(ulong address, Span<byte> data) => data.Fill(0xFF);
        public void MmioWrite(ulong address, ReadOnlySpan<byte> data) { }
    }

    public EmuBenchGuest(Action<Assembler> program, JitMode jit = JitMode.Off)
    {
        _memory = GuestMemory.Create(128 << 20);
        _accel = new EmuAccelerator(_memory, new NullBus(), new EmuOptions { Jit = jit });
        _cpu = _accel.CreateVcpu(0);
        _memory.Write(Pml4, Pdpt | 3UL);
        _memory.Write(Pdpt, Pd | 3UL);
        for (ulong i = 0; i < 32; i++)
        {
            ulong pt = PtBase + i * 0x1000;
            _memory.Write(Pd + i * 8, pt | 3UL);
            for (ulong j = 0; j < 512; j++) _memory.Write(pt + j * 8, ((i * 512 + j) << 12) | 3UL);
        }
        _memory.Write(Gdt + 8, 0x00AF_9B00_0000_FFFFUL);
        _memory.Write(Gdt + 16, 0x00CF_9300_0000_FFFFUL);
        var a = new Assembler(64);
        program(a);
        a.hlt(); // the program's end (the QEMU run ends with a debug-exit write instead)
        var w = new BytesWriter();
        a.Assemble(w, Code);
        _memory.Write(Code, w.Bytes.ToArray());
        var s = new VcpuState
        {
            Rip = Code, Cr0 = 0x8005_0033, Cr3 = Pml4, Cr4 = 0x620, Efer = 0xD01,
            Gdt = new DescriptorTable { Base = Gdt, Limit = 0x17 },
            Cs = new SegmentRegister { Selector = 8, Type = 0xB, S = true, Present = true, L = true, G = true, Limit = 0xFFFF_FFFF },
        };
        s.Ds = s.Es = s.Ss = s.Fs = s.Gs = new SegmentRegister { Selector = 16, Type = 3, S = true, Present = true, Db = true, G = true, Limit = 0xFFFF_FFFF };
        s[Gpr.Rsp] = 0x80000;
        _cpu.SetState(s);
    }

    private sealed class BytesWriter : CodeWriter
    {
        public List<byte> Bytes { get; } = [];
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    /// <summary>Runs to HLT; returns (guest instructions, wall seconds, CPU seconds of the running thread's process).</summary>
    public (ulong Instructions, double Seconds, double CpuSeconds) Run()
    {
        var cpu = (X86Cpu)_cpu;
        ulong before = cpu.Retired;
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var exit = _cpu.Run();
        sw.Stop();
        proc.Refresh();
        var cpuTime = proc.TotalProcessorTime - cpu0;
        if (exit.Reason != VcpuExitReason.Halt) throw new InvalidOperationException($"bench guest ended with {exit}");
        return (cpu.Retired - before, sw.Elapsed.TotalSeconds, cpuTime.TotalSeconds);
    }

    public void Dispose()
    {
        _accel.Dispose();
        _memory.Dispose();
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "?"; }
    }

    /// <summary>Share of retired instructions that ran in translated code, and the time spent translating.</summary>
    private string JitSummary()
    {
        var jit = _accel.JitEngine;
        var cpu = (X86Cpu)_cpu;
        if (jit is null) return "";
        double share = cpu.Retired == 0 ? 0 : 100.0 * cpu.JitRetired / cpu.Retired;
        return $", {share:F1}% of instructions in translated blocks, {jit.BlocksTranslated} blocks / {jit.CodeBytes} bytes translated in {jit.TranslationTime.TotalMilliseconds:F2} ms";
    }

    /// <summary>
    /// Runs the program with the translator off and on and under QEMU TCG (<see cref="QemuTcgLoop"/>, skipped
    /// where qemu-system-x86_64 is missing), alternating, and reports them side by side.
    /// <paramref name="idle"/> is the same program doing no work, for QEMU's start-up time.
    /// </summary>
    /// <paramref name="qemuProgram"/> is the same loop <paramref name="qemuScale"/> times as long, so QEMU's part
    /// outlasts the noise of its start-up (its instruction count is taken as that many times the emulator's).
    public static int Report(string name, Action<Assembler> program, Action<Assembler> qemuProgram, int qemuScale, Action<Assembler> idle, int rounds, string qemu = QemuTcgLoop.DefaultQemu)
    {
        var modes = new[] { JitMode.Off, JitMode.On };
        var best = new double[3];
        var bestCpu = new double[2];
        bool withQemu = File.Exists(qemu);
        if (!withQemu) Console.WriteLine($"{name}: no {qemu}; QEMU TCG not measured");
        for (int r = 0; r < rounds; r++)
        {
            ulong instructions = 0;
            for (int m = 0; m < modes.Length; m++)
            {
                using var g = new EmuBenchGuest(program, modes[m]);
                var (n, secs, cpuSecs) = g.Run();
                instructions = n;
                double mips = n / secs / 1e6;
                double cpuMips = n / Math.Max(cpuSecs, 1e-9) / 1e6;
                best[m] = Math.Max(best[m], mips);
                bestCpu[m] = Math.Max(bestCpu[m], cpuMips);
                Console.WriteLine($"{name} jit={modes[m].ToString().ToLowerInvariant()}: round {r + 1}: {n:N0} instructions in {secs:F3} s wall ({mips:F1} MIPS), {cpuSecs:F3} s CPU ({cpuMips:F1} MIPS per CPU-second){g.JitSummary()}");
            }
            if (!withQemu) continue;
            double loop = QemuTcgLoop.Seconds(qemu, qemuProgram), start = QemuTcgLoop.Seconds(qemu, idle);
            ulong qn = instructions * (ulong)qemuScale;
            double qmips = qn / Math.Max(loop - start, 1e-3) / 1e6;
            best[2] = Math.Max(best[2], qmips);
            Console.WriteLine($"{name} qemu tcg: round {r + 1}: the same loop {qemuScale}x as long, {qn:N0} instructions in {loop - start:F3} s wall ({qmips:F1} MIPS; {loop:F3} s run less {start:F3} s for the same guest doing nothing)");
        }
        for (int m = 0; m < modes.Length; m++)
            Console.WriteLine($"{name} jit={modes[m].ToString().ToLowerInvariant()}: best {best[m]:F1} MIPS wall-clock, {bestCpu[m]:F1} MIPS per CPU-second (load average {LoadAverage()})");
        if (withQemu) Console.WriteLine($"{name} qemu tcg: best {best[2]:F1} MIPS wall-clock; jit=on / qemu = {best[1] / best[2]:F2}");
        return 0;
    }
}
