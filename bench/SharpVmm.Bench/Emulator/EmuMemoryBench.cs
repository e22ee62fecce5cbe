using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Bench.Emulator;

/// <summary>MIPS of the emu accelerator on a load/store loop striding over 32 MiB with 4 KiB paging (TLB-bound).</summary>
public sealed class EmuMemoryBench : IBench
{
    public string Name => "emu-mips-memory";
    public string Description => "emu accelerator MIPS on a memory-bound guest loop with paging on (args: [passes] [rounds])";

    public int Run(string[] args)
    {
        int passes = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 40;
        int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
        const ulong span = 32 << 20;
        Action<Assembler> Loop(int passes) => a =>
        {
            var outer = a.CreateLabel();
            var inner = a.CreateLabel();
            a.mov(r8d, passes);
            a.Label(ref outer);
            a.mov(rsi, EmuBenchGuest.DataBase);
            a.mov(rdi, EmuBenchGuest.DataBase + span);
            a.Label(ref inner);
            a.mov(rax, __qword_ptr[rsi]);
            a.add(rax, rsi);
            a.mov(__qword_ptr[rsi], rax);
            a.add(rsi, 72); // touches a new page every ~57 iterations, all 8 Ki pages per pass
            a.cmp(rsi, rdi);
            a.jb(inner);
            a.dec(r8d);
            a.jnz(outer);
        };
        const int qemuScale = 4;
        return EmuBenchGuest.Report(Name, Loop(passes), Loop(passes * qemuScale), qemuScale, _ => { }, rounds);
    }
}
