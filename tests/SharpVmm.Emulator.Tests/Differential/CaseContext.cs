using Iced.Intel;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// Everything a generator sees while it builds one case: the random stream, the exact machine state before
/// the next instruction (the native runner has executed every earlier step), and the registers the sequence
/// must not write because memory operands are built on them.
/// </summary>
internal sealed class CaseContext
{
    public CaseContext(DiffRandom rng, NativeRunner native)
    {
        Rng = rng;
        Native = native;
        NextRip = native.CodeAddress;
    }

    public DiffRandom Rng { get; }
    public NativeRunner Native { get; }
    public CpuSnapshot State { get; set; } = new();
    public ulong NextRip { get; set; }

    /// <summary>Base register of memory operands (its value points into the data buffer), or -1.</summary>
    public int PtrReg { get; set; } = -1;
    /// <summary>Index register of memory operands (small value), or -1.</summary>
    public int IdxReg { get; set; } = -1;
    /// <summary>Bit per GPR the sequence must not write (RSP always).</summary>
    public ushort Protected { get; set; } = 1 << 4;
    /// <summary>x86 RFLAGS bits whose value is architecturally undefined at this point of the sequence.</summary>
    public ulong UndefinedFlags { get; set; }
    /// <summary>Flags a class declares unpredictable whenever an instruction writes them (see RepBsfClass).</summary>
    public ulong UnspecifiedFlags { get; set; }

    public ulong DataAddress => Native.DataAddress;

    public ulong Gpr(int index) => State.Gprs[index];

    /// <summary>Index into <see cref="NativeRunner.Data"/> (the compared area) of a guest address.</summary>
    public int AreaOffset(ulong address) => checked((int)(address - Native.ComparedAddress));

    /// <summary>The value of any GPR or sub-register in the current state.</summary>
    public ulong Value(Register r)
    {
        if (r >= Register.AH && r <= Register.BH) return (State.Gprs[r - Register.AH] >> 8) & 0xFF;
        var full = r.GetFullRegister();
        if (!full.IsGPR64()) throw new ArgumentException($"{r} is not a general register", nameof(r));
        ulong v = State.Gprs[full - Register.RAX];
        return r.GetSize() switch { 1 => v & 0xFF, 2 => v & 0xFFFF, 4 => v & 0xFFFF_FFFF, _ => v };
    }

    /// <summary>Little-endian value of <paramref name="size"/> bytes of the data buffer at guest address <paramref name="address"/>.</summary>
    public ulong ReadData(ulong address, int size)
    {
        var span = Native.Data.Slice(AreaOffset(address), size);
        ulong v = 0;
        for (int i = size - 1; i >= 0; i--) v = (v << 8) | span[i];
        return v;
    }
}
