using System.Buffers.Binary;
using System.Text;

namespace SharpVmm.Boot.Tests.Initramfs;

/// <summary>Builds small relocatable ELF64 files shaped like kernel modules, for the .modinfo parser's tests.</summary>
internal static class SyntheticElf
{
    public const int ShOffField = 0x28;
    public const int ShNumField = 0x3C;
    public const int ShStrNdxField = 0x3E;

    /// <summary>A module whose .modinfo holds these key=value strings (each NUL-terminated, as modpost writes them).</summary>
    public static byte[] Module(params string[] modinfo)
    {
        var data = new MemoryStream();
        foreach (var s in modinfo)
        {
            data.Write(Encoding.UTF8.GetBytes(s));
            data.WriteByte(0);
            data.WriteByte(0); // padding NULs appear between strings in real modules
        }
        return Build([(".text", [0x90, 0x90, 0xC3]), (".modinfo", data.ToArray()), (".note.gnu.build-id", new byte[20])]);
    }

    /// <summary>ELF header, section contents, .shstrtab, then the section header table (null section first).</summary>
    public static byte[] Build(IReadOnlyList<(string Name, byte[] Data)> sections)
    {
        var names = new MemoryStream();
        names.WriteByte(0);
        var nameOffsets = new List<int>();
        foreach (var s in sections.Select(s => s.Name).Append(".shstrtab"))
        {
            nameOffsets.Add((int)names.Length);
            names.Write(Encoding.ASCII.GetBytes(s));
            names.WriteByte(0);
        }
        List<(string Name, byte[] Data)> all = [.. sections, (".shstrtab", names.ToArray())];

        var file = new MemoryStream();
        file.Write(new byte[64]);
        var offsets = new List<long>();
        foreach (var (_, data) in all)
        {
            while (file.Length % 8 != 0)
                file.WriteByte(0);
            offsets.Add(file.Length);
            file.Write(data);
        }
        while (file.Length % 8 != 0)
            file.WriteByte(0);
        long shoff = file.Length;
        file.Write(new byte[64]); // SHN_UNDEF
        for (int i = 0; i < all.Count; i++)
        {
            var sh = new byte[64];
            BinaryPrimitives.WriteUInt32LittleEndian(sh, (uint)nameOffsets[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(sh.AsSpan(4), all[i].Name == ".shstrtab" ? 3u : 1u); // STRTAB / PROGBITS
            BinaryPrimitives.WriteUInt64LittleEndian(sh.AsSpan(0x18), (ulong)offsets[i]);
            BinaryPrimitives.WriteUInt64LittleEndian(sh.AsSpan(0x20), (ulong)all[i].Data.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(sh.AsSpan(0x30), 1);
            file.Write(sh);
        }

        var bytes = file.ToArray();
        var h = bytes.AsSpan();
        h[0] = 0x7F; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F';
        h[4] = 2; h[5] = 1; h[6] = 1;                                  // ELFCLASS64, little-endian, EV_CURRENT
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x10..], 1);        // ET_REL
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x12..], 62);       // EM_X86_64
        BinaryPrimitives.WriteUInt32LittleEndian(h[0x14..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(h[ShOffField..], (ulong)shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x34..], 64);       // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x3A..], 64);       // e_shentsize
        BinaryPrimitives.WriteUInt16LittleEndian(h[ShNumField..], (ushort)(all.Count + 1));
        BinaryPrimitives.WriteUInt16LittleEndian(h[ShStrNdxField..], (ushort)all.Count);
        return bytes;
    }

    public static ulong SectionHeaderOffset(byte[] elf) => BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(ShOffField));

    /// <summary>The file offset of section <paramref name="index"/>'s header.</summary>
    public static int SectionHeader(byte[] elf, int index) => checked((int)SectionHeaderOffset(elf) + index * 64);
}
