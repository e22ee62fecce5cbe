using System.Buffers.Binary;
using System.Text;

namespace SharpVmm.Boot.Initramfs;

/// <summary>
/// Reads the .modinfo section of a Linux kernel module (a relocatable little-endian ELF64 file) by walking
/// the section header table. Every offset and size from the file is checked against the file length:
/// a truncated or corrupt module gives an <see cref="InitramfsException"/> naming the problem.
/// </summary>
public static class ElfModInfoReader
{
    private const int Elf64HeaderSize = 64;
    private const int Elf64SectionHeaderSize = 64;
    private const ushort ShnXIndex = 0xFFFF;
    private const uint ShtNoBits = 8;

    public static ModInfo Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InitramfsException($"cannot read kernel module '{path}': {ex.Message}", ex);
        }
        return Parse(bytes, path);
    }

    /// <param name="elf">The whole module file.</param>
    /// <param name="source">Names the file in error messages.</param>
    public static ModInfo Parse(ReadOnlySpan<byte> elf, string source = "module")
    {
        if (elf.Length < 4 || elf[0] != 0x7F || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw Bad(source, "not an ELF file (no \\x7fELF magic); kernel modules must be uncompressed .ko files");
        if (elf.Length < Elf64HeaderSize)
            throw Bad(source, $"truncated ELF header ({elf.Length} bytes, need {Elf64HeaderSize})");
        if (elf[4] != 2)
            throw Bad(source, $"ELF class {elf[4]} is not ELF64; only x86-64 modules are supported");
        if (elf[5] != 1)
            throw Bad(source, $"ELF data encoding {elf[5]} is not little-endian");

        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(elf[0x28..]);
        ushort shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3A..]);
        ulong shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3C..]);
        uint shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3E..]);

        if (shoff == 0)
            throw Bad(source, "the ELF file has no section header table");
        if (shentsize != Elf64SectionHeaderSize)
            throw Bad(source, $"section header entry size {shentsize} is not {Elf64SectionHeaderSize}");
        if (shoff > (ulong)elf.Length || (ulong)elf.Length - shoff < Elf64SectionHeaderSize)
            throw Bad(source, $"section header table offset 0x{shoff:x} is beyond the end of the file ({elf.Length} bytes)");

        // Extended numbering: with many sections the real counts live in section 0.
        var section0 = elf.Slice((int)shoff, Elf64SectionHeaderSize);
        if (shnum == 0)
            shnum = BinaryPrimitives.ReadUInt64LittleEndian(section0[0x20..]);
        if (shstrndx == ShnXIndex)
            shstrndx = BinaryPrimitives.ReadUInt32LittleEndian(section0[0x28..]);

        if (shnum == 0 || shnum > ((ulong)elf.Length - shoff) / Elf64SectionHeaderSize)
            throw Bad(source, $"section header table ({shnum} entries at 0x{shoff:x}) does not fit in the file ({elf.Length} bytes)");
        if (shstrndx >= shnum)
            throw Bad(source, $"section name table index {shstrndx} is out of range ({shnum} sections)");

        var names = SectionData(elf, shoff, shstrndx, source, "section name table");
        for (ulong i = 0; i < shnum; i++)
        {
            var sh = Header(elf, shoff, i);
            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(sh);
            if (nameOffset >= (uint)names.Length)
                throw Bad(source, $"section {i} has a name offset 0x{nameOffset:x} outside the section name table");
            var rest = names[(int)nameOffset..];
            int end = rest.IndexOf((byte)0);
            if (end < 0)
                throw Bad(source, $"section {i}'s name is not NUL-terminated");
            if (rest[..end].SequenceEqual(".modinfo"u8))
                return ParseStrings(SectionData(elf, shoff, i, source, ".modinfo section"), source);
        }
        throw Bad(source, "no .modinfo section: this is not a Linux kernel module");
    }

    private static ReadOnlySpan<byte> Header(ReadOnlySpan<byte> elf, ulong shoff, ulong index) =>
        elf.Slice(checked((int)(shoff + index * Elf64SectionHeaderSize)), Elf64SectionHeaderSize);

    private static ReadOnlySpan<byte> SectionData(ReadOnlySpan<byte> elf, ulong shoff, ulong index, string source, string what)
    {
        var sh = Header(elf, shoff, index);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]);
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(sh[0x20..]);
        if (type == ShtNoBits)
            throw Bad(source, $"the {what} (section {index}) has no data in the file");
        if (offset > (ulong)elf.Length || size > (ulong)elf.Length - offset)
            throw Bad(source, $"the {what} (section {index}: offset 0x{offset:x}, size 0x{size:x}) extends beyond the end of the file ({elf.Length} bytes); the file is truncated or corrupt");
        return elf.Slice((int)offset, (int)size);
    }

    private static ModInfo ParseStrings(ReadOnlySpan<byte> data, string source)
    {
        var fields = new List<KeyValuePair<string, string>>();
        while (!data.IsEmpty)
        {
            int end = data.IndexOf((byte)0);
            var s = end < 0 ? data : data[..end];
            data = end < 0 ? [] : data[(end + 1)..];
            if (s.IsEmpty)
                continue; // alignment padding between strings
            int eq = s.IndexOf((byte)'=');
            if (eq <= 0)
                throw Bad(source, $".modinfo entry '{Encoding.UTF8.GetString(s)}' is not key=value");
            fields.Add(new(Encoding.UTF8.GetString(s[..eq]), Encoding.UTF8.GetString(s[(eq + 1)..])));
        }
        return new ModInfo(fields);
    }

    private static InitramfsException Bad(string source, string problem) =>
        new($"kernel module '{source}' is malformed: {problem}");
}
