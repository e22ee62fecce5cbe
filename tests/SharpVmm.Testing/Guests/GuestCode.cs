using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Testing;

/// <summary>Guest code for tests, assembled with Iced at the address it will run from.</summary>
public static class GuestCode
{
    public static byte[] Assemble(int bitness, Action<Assembler> build, ulong address)
    {
        var a = new Assembler(bitness);
        build(a);
        return Assemble(a, address);
    }

    public static byte[] Assemble(Assembler a, ulong address)
    {
        var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), address);
        return stream.ToArray();
    }

    /// <summary>A 64-bit guest that counts forever: <c>inc qword [counter]</c> in a loop, so a test can see it run and stop.</summary>
    public static Action<Assembler> CountingLoop(ulong counter) => a =>
    {
        var loop = a.CreateLabel();
        a.mov(rbx, counter);
        a.Label(ref loop);
        a.inc(__qword_ptr[rbx]);
        a.jmp(loop);
    };

    /// <summary>Jcc with condition code <paramref name="cc"/> (0 = JO ... 15 = JG, the order of the opcode's low nibble).</summary>
    public static void Jcc(Assembler a, int cc, Label target)
    {
        switch (cc)
        {
            case 0: a.jo(target); break;
            case 1: a.jno(target); break;
            case 2: a.jb(target); break;
            case 3: a.jae(target); break;
            case 4: a.je(target); break;
            case 5: a.jne(target); break;
            case 6: a.jbe(target); break;
            case 7: a.ja(target); break;
            case 8: a.js(target); break;
            case 9: a.jns(target); break;
            case 10: a.jp(target); break;
            case 11: a.jnp(target); break;
            case 12: a.jl(target); break;
            case 13: a.jge(target); break;
            case 14: a.jle(target); break;
            default: a.jg(target); break;
        }
    }
}
