using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Bench.Emulator;

/// <summary>MIPS of the emu accelerator on a register-only integer loop (ALU, shifts, compare and branch).</summary>
public sealed class EmuComputeBench : IBench
{
    public string Name => "emu-mips-compute";
    public string Description => "emu accelerator MIPS on a compute-bound guest loop (args: [iterations in millions] [rounds])";

    public int Run(string[] args)
    {
        long iterations = (args.Length > 0 ? long.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 100) * 1_000_000;
        int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
        Action<Assembler> Loop(long iterations) => a =>
        {
            var loop = a.CreateLabel();
            a.mov(rcx, iterations);
            a.xor(eax, eax);
            a.mov(ebx, 1);
            a.Label(ref loop);
            a.add(rax, rcx);
            a.xor(rbx, rax);
            a.shl(rbx, 1);
            a.lea(rdx, __[rax + rbx * 2 + 7]);
            a.sub(rdx, rcx);
            a.dec(rcx);
            a.jnz(loop);
        };
        const int qemuScale = 10;
        return EmuBenchGuest.Report(Name, Loop(iterations), Loop(iterations * qemuScale), qemuScale, _ => { }, rounds);
    }
}
