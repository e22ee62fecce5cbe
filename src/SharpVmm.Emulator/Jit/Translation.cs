namespace SharpVmm.Emulator.Jit;

/// <summary>
/// Host code for the first <see cref="Covered"/> ops of a block. The code is a C function
/// <c>int code(ulong* R)</c>: it runs with the register file at <c>R</c> and returns the index of the op where the
/// interpreter must continue (<see cref="Covered"/>, or the op count when the block's closing branch ran and left
/// the next RIP in <c>R[JitRipSlot]</c>), plus <see cref="FlagsWritten"/> when it left the arithmetic flags, as
/// RFLAGS bits, in <c>R[JitFlagsSlot]</c>. Reached only through <see cref="Block.Jit"/>, which invalidation clears.
/// </summary>
internal sealed class Translation
{
    public const int FlagsWritten = 0x10000, IndexMask = 0xFFFF;
    /// <summary>Bits 17 and up: extra passes a block that loops to its own start made before the final one.</summary>
    public const int IterationShift = 17;

    /// <summary>Marks a block whose first op cannot be translated: it is never tried again.</summary>
    public static readonly Translation None = new(0, 0, false, 0);

    public Translation(nint code, int covered, bool needsFlagsIn, int bytes)
    {
        Code = code;
        Covered = covered;
        NeedsFlagsIn = needsFlagsIn;
        Bytes = bytes;
    }

    public readonly nint Code;
    public readonly int Covered;
    /// <summary>The code reads the guest's arithmetic flags before writing them: the caller puts them, as RFLAGS bits, in <c>R[JitFlagsSlot]</c>.</summary>
    public readonly bool NeedsFlagsIn;
    public readonly int Bytes;
}
