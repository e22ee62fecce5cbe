using System.Buffers.Binary;

namespace SharpVmm.Boot.Multiboot;

/// <summary>
/// The Multiboot (version 1) header: magic 0x1BADB002, flags and a checksum making the three sum to zero, 32-bit
/// aligned within the first 8 KiB of the image.
/// </summary>
public sealed record MultibootHeader(int Offset, uint Flags)
{
    public const uint Magic = 0x1BAD_B002;
    public const int SearchLength = 8192;

    /// <summary>Flag bit 16: the header carries load addresses (the "a.out kludge") instead of relying on ELF.</summary>
    public const uint AoutKludge = 1u << 16;
    /// <summary>Bits 0-15 are requirements; the loader must refuse an image asking for one it does not know.</summary>
    public const uint RequiredMask = 0xFFFF;
    /// <summary>The requirements this loader meets: page-aligned modules (0), memory information (1); a video mode (2) is a request it may ignore.</summary>
    public const uint KnownRequirements = 0x7;

    public bool WantsPageAlignedModules => (Flags & 1) != 0;

    /// <summary>The header of <paramref name="image"/>, or null when it has none.</summary>
    public static MultibootHeader? Find(ReadOnlySpan<byte> image)
    {
        int limit = Math.Min(image.Length, SearchLength) - 12;
        for (int off = 0; off <= limit; off += 4)
        {
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(image[off..]);
            if (magic != Magic) continue;
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(image[(off + 4)..]);
            uint checksum = BinaryPrimitives.ReadUInt32LittleEndian(image[(off + 8)..]);
            if (unchecked(magic + flags + checksum) == 0) return new MultibootHeader(off, flags);
        }
        return null;
    }
}
