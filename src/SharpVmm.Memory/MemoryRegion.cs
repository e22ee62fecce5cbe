namespace SharpVmm.Memory;

/// <summary>
/// One contiguous range of guest-physical RAM backed by one anonymous host mapping.
/// The host pointer is exposed only to accelerators (KVM registers it, the emulator's TLB caches it);
/// everything else goes through the bounds-checked accessors of <see cref="GuestMemory"/>.
/// </summary>
public sealed unsafe class MemoryRegion
{
    internal MemoryRegion(int slot, ulong guestBase, ulong size, byte* host)
    {
        Slot = slot;
        GuestBase = guestBase;
        Size = size;
        Host = host;
        Dirty = new DirtyBitmap(size);
    }

    /// <summary>Index of the region; the KVM backend uses it as its memory slot number.</summary>
    public int Slot { get; }
    public ulong GuestBase { get; }
    public ulong Size { get; }
    public ulong GuestEnd => GuestBase + Size;
    public byte* Host { get; }

    /// <summary>Pages the VMM or the emulator wrote (KVM keeps its own log; see DirtyBitmap).</summary>
    public DirtyBitmap Dirty { get; }

    public bool Contains(ulong gpa) => gpa - GuestBase < Size;
    public bool Contains(ulong gpa, ulong length) => gpa - GuestBase < Size && length <= Size - (gpa - GuestBase);
}
