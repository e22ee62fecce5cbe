using System.Buffers.Binary;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;

namespace SharpVmm.Boot;

/// <summary>
/// The boot GDT both loaders install. The Linux 64-bit boot protocol fixes the selectors: __BOOT_CS = 0x10 (execute/
/// read, L = 1, D = 0) and __BOOT_DS = 0x18 (read/write). A busy TSS at 0x20 gives TR a valid descriptor, which VMX
/// entry checks insist on even though nothing switches tasks. The segment caches handed to the vCPU are decoded from
/// the very descriptors written to memory, so the two cannot disagree.
/// </summary>
public static class Gdt
{
    public const ushort CodeSelector = 0x10;
    public const ushort DataSelector = 0x18;
    public const ushort TssSelector = 0x20;

    // Access bytes: present, DPL 0, code/data (S), type with the accessed bit already set so the CPU never writes
    // the GDT back (and the cached type matches memory).
    private const byte CodeAccess = 0x9B;   // P | S | execute/read | accessed
    private const byte DataAccess = 0x93;   // P | S | read/write | accessed
    private const byte TssAccess = 0x8B;    // P | busy 32/64-bit TSS (system segment)

    // Flags nibble (descriptor bits 52..55): AVL = 1, L = 2, D/B = 4, G = 8.
    private const byte Flat32 = 0xC;        // G | D/B
    private const byte Code64 = 0xA;        // G | L

    /// <summary>Minimal TSS limit (104 bytes, no I/O bitmap).</summary>
    private const uint TssLimit = 0x67;

    /// <summary>Encodes one 8-byte segment descriptor.</summary>
    public static ulong Descriptor(uint baseAddress, uint limit, byte access, byte flags)
    {
        if (limit > 0xF_FFFF) throw new ArgumentOutOfRangeException(nameof(limit), "a descriptor limit has 20 bits");
        return (limit & 0xFFFFUL)
            | ((ulong)(baseAddress & 0xFF_FFFF) << 16)
            | ((ulong)access << 40)
            | ((ulong)((limit >> 16) & 0xF) << 48)
            | ((ulong)(flags & 0xF) << 52)
            | ((ulong)(baseAddress >> 24) << 56);
    }

    /// <summary>
    /// The GDT for <paramref name="longMode"/> (64-bit code segment) or 32-bit protected mode, as 8-byte slots:
    /// null, null, code (0x10), data (0x18), TSS (0x20; two slots in long mode, whose TSS descriptor is 16 bytes).
    /// </summary>
    public static ulong[] Entries(bool longMode) =>
    [
        0,
        0,
        Descriptor(0, 0xF_FFFF, CodeAccess, longMode ? Code64 : Flat32),
        Descriptor(0, 0xF_FFFF, DataAccess, Flat32),
        Descriptor(0, TssLimit, TssAccess, 0),
        0, // long mode: upper half of the 16-byte TSS descriptor (base bits 63..32 = 0); protected mode: unused
    ];

    /// <summary>Writes the GDT at <paramref name="address"/> and returns the GDTR value.</summary>
    public static DescriptorTable Write(GuestMemory memory, bool longMode, ulong address = LowMemoryLayout.Gdt)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var entries = Entries(longMode);
        Span<byte> bytes = stackalloc byte[entries.Length * 8];
        for (int i = 0; i < entries.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(bytes[(i * 8)..], entries[i]);
        memory.Write(address, bytes);
        return new DescriptorTable { Base = address, Limit = (ushort)(bytes.Length - 1) };
    }

    /// <summary>The hidden-cache form of a descriptor as it is after loading <paramref name="selector"/>.</summary>
    public static SegmentRegister Decode(ushort selector, ulong descriptor)
    {
        uint rawLimit = (uint)(descriptor & 0xFFFF) | (uint)((descriptor >> 32) & 0xF_0000);
        byte access = (byte)(descriptor >> 40);
        byte flags = (byte)((descriptor >> 52) & 0xF);
        bool g = (flags & 0x8) != 0;
        return new SegmentRegister
        {
            Selector = selector,
            Base = ((descriptor >> 16) & 0xFF_FFFF) | (((descriptor >> 56) & 0xFF) << 24),
            Limit = g ? (rawLimit << 12) | 0xFFF : rawLimit,
            Type = (byte)(access & 0xF),
            S = (access & 0x10) != 0,
            Dpl = (byte)((access >> 5) & 3),
            Present = (access & 0x80) != 0,
            Avl = (flags & 0x1) != 0,
            L = (flags & 0x2) != 0,
            Db = (flags & 0x4) != 0,
            G = g,
        };
    }

    /// <summary>The segment cache for <paramref name="selector"/> in the GDT of <see cref="Entries"/>.</summary>
    public static SegmentRegister Segment(bool longMode, ushort selector) => Decode(selector, Entries(longMode)[selector >> 3]);
}
