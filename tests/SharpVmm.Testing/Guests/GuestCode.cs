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
}
