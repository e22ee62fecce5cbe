using System.Buffers.Binary;
using Iced.Intel;

namespace SharpVmm.Testing;

/// <summary>
/// Builds Multiboot v1 test kernels in the test: code assembled with Iced, wrapped in a minimal ELF32 executable
/// (one PT_LOAD program header per segment), the Multiboot header first in the first segment, the entry right after it.
/// </summary>
public static class MultibootElf
{
    public const uint HeaderMagic = 0x1BAD_B002;
    /// <summary>Page-aligned modules and memory information: what kvm-unit-tests' kernels ask for.</summary>
    public const uint DefaultFlags = 0x3;

    public sealed record Segment(uint Address, byte[] Bytes, uint Bss = 0);

    /// <summary>A 32-bit kernel at <paramref name="loadAddress"/>: header, then <paramref name="code"/> (the entry point).</summary>
    public static byte[] Kernel(Action<Assembler> code, uint loadAddress = 0x10_0000, uint bss = 0, uint flags = DefaultFlags,
        params Segment[] extra)
    {
        var a = new Assembler(32);
        a.db(Header(flags));
        code(a);
        var bytes = Assemble(a, loadAddress);
        return Elf(loadAddress + 12, [new Segment(loadAddress, bytes, bss), .. extra]);
    }

    public static byte[] Header(uint flags)
    {
        var h = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(h, HeaderMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), unchecked(0u - HeaderMagic - flags));
        return h;
    }

    public static byte[] Assemble(Assembler a, ulong address)
    {
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), address);
        return ms.ToArray();
    }

    /// <summary>An ELF32 EM_386 ET_EXEC file: header, program headers, then each segment's bytes (4-byte aligned).</summary>
    public static byte[] Elf(uint entry, IReadOnlyList<Segment> segments)
    {
        const int ehsize = 52, phentsize = 32;
        int dataStart = ehsize + phentsize * segments.Count;
        var offsets = new int[segments.Count];
        int pos = dataStart;
        for (int i = 0; i < segments.Count; i++)
        {
            pos = (pos + 3) & ~3;
            offsets[i] = pos;
            pos += segments[i].Bytes.Length;
        }
        var f = new byte[pos];
        f[0] = 0x7F; f[1] = (byte)'E'; f[2] = (byte)'L'; f[3] = (byte)'F';
        f[4] = 1; f[5] = 1; f[6] = 1;                         // ELFCLASS32, little-endian, version 1
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(16), 2);   // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(18), 3);   // EM_386
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(20), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(24), entry);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(28), ehsize);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(40), ehsize);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(42), phentsize);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(44), (ushort)segments.Count);
        for (int i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            var ph = f.AsSpan(ehsize + i * phentsize);
            BinaryPrimitives.WriteUInt32LittleEndian(ph, 1);                       // PT_LOAD
            BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], (uint)offsets[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[8..], s.Address);          // p_vaddr
            BinaryPrimitives.WriteUInt32LittleEndian(ph[12..], s.Address);         // p_paddr
            BinaryPrimitives.WriteUInt32LittleEndian(ph[16..], (uint)s.Bytes.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[20..], (uint)s.Bytes.Length + s.Bss);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[24..], 7);                 // RWX
            BinaryPrimitives.WriteUInt32LittleEndian(ph[28..], 4);
            s.Bytes.CopyTo(f, offsets[i]);
        }
        return f;
    }
}
