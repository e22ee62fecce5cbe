namespace SharpVmm.Emulator.Jit;

/// <summary>
/// Host code for the first <see cref="Covered"/> ops of a block. The code is a C function <c>long code(ulong* R)</c>
/// run with the register file at <c>R</c>; it may jump on into other blocks' code (chaining) before it returns.
/// It leaves the arithmetic flags, as RFLAGS bits, in <c>R[JitFlagsSlot]</c> and adds the instructions of every
/// block it completed to <c>R[JitRetiredSlot]</c>. The value returned says where it stopped:
/// <list type="bullet">
/// <item>bits 0-11 <see cref="Boundary"/>: at a block boundary, the next RIP in <c>R[JitRipSlot]</c>; bits 12-24 the
/// direct exit whose slot is not chained yet (<see cref="DetailMask"/>: none).</item>
/// <item>otherwise the index of the op where the interpreter continues, in the block whose start RIP is in
/// <c>R[BlockRipReg]</c>; bits 12-24 that op's offset in the block; <see cref="MissBit"/> when a translated op's
/// fast path did not apply there.</item>
/// </list>
/// Bits 32-63 hold the <see cref="Id"/> of the translation that returned. Code is reached through
/// <see cref="Block.Jit"/>, a patched chain slot or the native jump cache; invalidation clears the first and
/// <see cref="Kill"/>s the code, whose entry then leaves at once for the dispatcher.
/// </summary>
internal sealed unsafe class Translation
{
    public const int IndexMask = 0xFFF, Boundary = 0xFFF, DetailShift = 12, DetailMask = 0x1FFF;
    public const long MissBit = 1L << 25;
    /// <summary>Bytes before the entry point: the valid word, then one chain slot per direct exit.</summary>
    public const int HeaderBytes = 32, MaxSlots = 3;

    /// <summary>Marks a block whose first op cannot be translated: it is never tried again.</summary>
    public static readonly Translation None = new(0, 0, 0, false, 0, -1, null, 0, []);

    private readonly CodeBuffer? _buffer;
    private readonly nint _write;

    public Translation(nint code, nint write, int covered, bool needsFlagsIn, int bytes, int id, CodeBuffer? buffer, int generation, ulong[] targets)
    {
        Code = code;
        _write = write;
        Covered = covered;
        NeedsFlagsIn = needsFlagsIn;
        Bytes = bytes;
        Id = id;
        _buffer = buffer;
        Generation = generation;
        Targets = targets;
    }

    /// <summary>The entry point (<see cref="HeaderBytes"/> into the allocation).</summary>
    public readonly nint Code;
    public readonly int Covered;
    /// <summary>The code reads the guest's arithmetic flags before writing them.</summary>
    public readonly bool NeedsFlagsIn;
    public readonly int Bytes;
    /// <summary>Number returned in the upper half of the exit value; the engine maps it back to the block.</summary>
    public readonly int Id;
    /// <summary>The code-buffer generation the code was placed in.</summary>
    public readonly int Generation;
    /// <summary>Per direct exit (chain slot): the block key of its target.</summary>
    public readonly ulong[] Targets;

    /// <summary>Points direct exit <paramref name="exit"/> at <paramref name="code"/> (an 8-byte store: a racing jump sees either).</summary>
    public void Patch(int exit, nint code) => Volatile.Write(ref *(nint*)(_write + 8 + 8 * exit), code);

    /// <summary>Makes the code's entry leave at once (the block was invalidated); chain slots and the native jump cache may still point here.</summary>
    public void Kill() => _buffer?.Kill(_write, Generation);
}
