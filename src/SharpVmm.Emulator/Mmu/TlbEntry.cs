namespace SharpVmm.Emulator;

/// <summary>
/// One software TLB slot. Its layout is read by the translated code's inline probe (Jit/BlockCompiler.cs): 16 bytes,
/// the tag first, then the addend.
/// </summary>
internal struct TlbEntry
{
    /// <summary>Linear page address | user bit; <see cref="Mmu.InvalidTag"/> when empty.</summary>
    public ulong Tag;
    /// <summary>Host address = linear address + Addend (RAM pages only).</summary>
    public long Addend;
}
