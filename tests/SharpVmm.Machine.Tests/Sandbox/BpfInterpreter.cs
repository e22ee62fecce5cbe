using SharpVmm.Machine.Sandbox;

namespace SharpVmm.Machine.Tests.Sandbox;

/// <summary>
/// Runs a seccomp program the way the kernel does (classic BPF over struct seccomp_data), for the few opcodes a
/// seccomp filter uses; anything else fails the test, as the kernel's verifier would refuse it.
/// </summary>
internal static class BpfInterpreter
{
    public static uint Run(SockFilter[] program, int nr, ulong[]? args = null, uint arch = Seccomp.AuditArchX86_64)
    {
        args ??= new ulong[6];
        uint a = 0;
        for (int pc = 0; pc < program.Length; pc++)
        {
            var i = program[pc];
            switch (i.Code)
            {
                case Bpf.LdWAbs: a = Word(i.K, nr, arch, args); break;
                case Bpf.RetK: return i.K;
                case Bpf.JeqK: pc += a == i.K ? i.Jt : i.Jf; break;
                case Bpf.JgeK: pc += a >= i.K ? i.Jt : i.Jf; break;
                case Bpf.JsetK: pc += (a & i.K) != 0 ? i.Jt : i.Jf; break;
                default: throw new InvalidOperationException($"opcode 0x{i.Code:x} at {pc}");
            }
        }
        throw new InvalidOperationException("the program ran off its end without a RET (the kernel refuses such a program)");
    }

    private static uint Word(uint offset, int nr, uint arch, ulong[] args) => offset switch
    {
        0 => (uint)nr,
        4 => arch,
        >= 16 and < 64 when offset % 4 == 0 => (offset - 16) % 8 == 0 ? (uint)args[(offset - 16) / 8] : (uint)(args[(offset - 16) / 8] >> 32),
        _ => throw new InvalidOperationException($"load from offset {offset} of seccomp_data"),
    };
}
