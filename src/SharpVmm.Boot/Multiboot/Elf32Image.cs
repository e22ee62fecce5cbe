using System.Buffers.Binary;

namespace SharpVmm.Boot.Multiboot;

/// <summary>One PT_LOAD program header of an ELF32 image.</summary>
public readonly record struct Elf32Segment(uint FileOffset, uint VirtualAddress, uint PhysicalAddress, uint FileSize, uint MemorySize);

/// <summary>
/// The parts of a 32-bit little-endian x86 ELF executable a Multiboot loader needs: the entry point and the loadable
/// segments. Malformed headers are refused with a <see cref="BootException"/> naming the problem.
/// </summary>
public sealed class Elf32Image
{
    private const int HeaderSize = 52;
    private const uint PtLoad = 1;

    public uint Entry { get; }
    public IReadOnlyList<Elf32Segment> Segments { get; }

    private Elf32Image(uint entry, List<Elf32Segment> segments)
    {
        Entry = entry;
        Segments = segments;
    }

    public static bool IsElf(ReadOnlySpan<byte> image) =>
        image.Length >= 4 && image[0] == 0x7F && image[1] == (byte)'E' && image[2] == (byte)'L' && image[3] == (byte)'F';

    public static Elf32Image Parse(ReadOnlySpan<byte> image)
    {
        if (!IsElf(image)) throw new BootException("the multiboot kernel is not an ELF file (images using the a.out kludge are not supported)");
        if (image.Length < HeaderSize) throw new BootException("the multiboot kernel's ELF header is truncated");
        if (image[4] != 1) throw new BootException("the multiboot kernel is a 64-bit ELF file; Multiboot v1 loads 32-bit (ELFCLASS32) kernels");
        if (image[5] != 1) throw new BootException("the multiboot kernel's ELF file is not little-endian");
        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(image[16..]);
        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(image[18..]);
        if (type != 2) throw new BootException($"the multiboot kernel's ELF type is {type}, not an executable (ET_EXEC)");
        if (machine != 3) throw new BootException($"the multiboot kernel's ELF machine is {machine}, not x86 (EM_386)");
        uint entry = BinaryPrimitives.ReadUInt32LittleEndian(image[24..]);
        uint phoff = BinaryPrimitives.ReadUInt32LittleEndian(image[28..]);
        ushort phentsize = BinaryPrimitives.ReadUInt16LittleEndian(image[42..]);
        ushort phnum = BinaryPrimitives.ReadUInt16LittleEndian(image[44..]);
        if (phnum == 0) throw new BootException("the multiboot kernel's ELF file has no program headers");
        if (phentsize < 32 || (ulong)phoff + (ulong)phentsize * phnum > (ulong)image.Length)
            throw new BootException("the multiboot kernel's ELF program headers lie outside the file");
        var segments = new List<Elf32Segment>();
        for (int i = 0; i < phnum; i++)
        {
            var ph = image.Slice((int)(phoff + (uint)(i * phentsize)), 32);
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != PtLoad) continue;
            var s = new Elf32Segment(
                BinaryPrimitives.ReadUInt32LittleEndian(ph[4..]),
                BinaryPrimitives.ReadUInt32LittleEndian(ph[8..]),
                BinaryPrimitives.ReadUInt32LittleEndian(ph[12..]),
                BinaryPrimitives.ReadUInt32LittleEndian(ph[16..]),
                BinaryPrimitives.ReadUInt32LittleEndian(ph[20..]));
            if (s.MemorySize == 0) continue;
            if (s.FileSize > s.MemorySize) throw new BootException($"ELF segment {i} of the multiboot kernel has more file bytes (0x{s.FileSize:x}) than memory bytes (0x{s.MemorySize:x})");
            if ((ulong)s.FileOffset + s.FileSize > (ulong)image.Length) throw new BootException($"ELF segment {i} of the multiboot kernel runs past the end of the file");
            if ((ulong)s.PhysicalAddress + s.MemorySize > 1UL << 32) throw new BootException($"ELF segment {i} of the multiboot kernel runs past 4 GiB");
            segments.Add(s);
        }
        if (segments.Count == 0) throw new BootException("the multiboot kernel's ELF file has no loadable (PT_LOAD) segment");
        return new Elf32Image(entry, segments);
    }

    /// <summary>
    /// The entry point as a physical address: kernels linked to run at a higher virtual address give e_entry in that
    /// space, and it is translated through the segment that contains it.
    /// </summary>
    public uint PhysicalEntry()
    {
        foreach (var s in Segments)
            if (Entry >= s.PhysicalAddress && Entry - s.PhysicalAddress < s.MemorySize) return Entry;
        foreach (var s in Segments)
            if (Entry >= s.VirtualAddress && Entry - s.VirtualAddress < s.MemorySize) return Entry - s.VirtualAddress + s.PhysicalAddress;
        throw new BootException($"the multiboot kernel's entry point 0x{Entry:x} is in none of its loadable segments");
    }
}
