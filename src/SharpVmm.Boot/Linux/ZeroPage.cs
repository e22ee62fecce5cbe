using System.Buffers.Binary;

namespace SharpVmm.Boot.Linux;

/// <summary>
/// struct boot_params, the "zero page" (Documentation/arch/x86/zero-page.rst): built zeroed, with the kernel's own
/// setup header copied in and the loader's fields filled. Starting from zeros matters: the kernel wipes fields it
/// thinks a careless loader left behind when the sentinel byte at 0x1EF is non-zero.
/// </summary>
public static class ZeroPage
{
    public const int Size = 4096;
    public const int AcpiRsdpAddrOffset = 0x070;
    public const int ExtRamdiskImageOffset = 0x0C0;
    public const int ExtRamdiskSizeOffset = 0x0C4;
    public const int ExtCmdLinePtrOffset = 0x0C8;
    public const int E820EntriesOffset = 0x1E8;
    public const int SentinelOffset = 0x1EF;
    public const int E820TableOffset = 0x2D0;
    public const int E820EntrySize = 20;

    /// <summary>type_of_loader for a boot loader without an assigned ID.</summary>
    public const byte LoaderTypeUndefined = 0xFF;

    /// <summary>
    /// heap_end_ptr with CAN_USE_HEAP: only the 16-bit setup code reads it, which the 64-bit entry skips; the value is
    /// the conventional end of a full 64 KiB setup segment minus 0x200.
    /// </summary>
    public const ushort HeapEndPtr = 0xFE00;

    public static byte[] Build(ReadOnlySpan<byte> kernel, SetupHeader header, ulong commandLine, ulong initrdAddress,
        ulong initrdSize, ulong acpiRsdp, IReadOnlyList<E820Entry> e820)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(e820);
        if (e820.Count > E820.MaxZeroPageEntries)
            throw new BootException($"{e820.Count} e820 entries do not fit in the zero page (at most {E820.MaxZeroPageEntries})");

        var zp = new byte[Size];
        var p = zp.AsSpan();
        kernel[SetupHeader.Offset..header.End].CopyTo(p[SetupHeader.Offset..]);

        p[SetupHeader.TypeOfLoaderOffset] = LoaderTypeUndefined;
        p[SetupHeader.LoadFlagsOffset] |= SetupHeader.CanUseHeap;
        BinaryPrimitives.WriteUInt16LittleEndian(p[SetupHeader.HeapEndPtrOffset..], HeapEndPtr);
        BinaryPrimitives.WriteUInt32LittleEndian(p[SetupHeader.Code32StartOffset..], (uint)LinuxLoader.KernelLoadAddress);

        BinaryPrimitives.WriteUInt32LittleEndian(p[SetupHeader.CmdLinePtrOffset..], (uint)commandLine);
        BinaryPrimitives.WriteUInt32LittleEndian(p[ExtCmdLinePtrOffset..], (uint)(commandLine >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(p[SetupHeader.RamdiskImageOffset..], (uint)initrdAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(p[ExtRamdiskImageOffset..], (uint)(initrdAddress >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(p[SetupHeader.RamdiskSizeOffset..], (uint)initrdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(p[ExtRamdiskSizeOffset..], (uint)(initrdSize >> 32));
        BinaryPrimitives.WriteUInt64LittleEndian(p[AcpiRsdpAddrOffset..], acpiRsdp);

        p[E820EntriesOffset] = (byte)e820.Count;
        for (int i = 0; i < e820.Count; i++)
        {
            var e = p.Slice(E820TableOffset + i * E820EntrySize, E820EntrySize);
            BinaryPrimitives.WriteUInt64LittleEndian(e, e820[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(e[8..], e820[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(e[16..], (uint)e820[i].Type);
        }
        return zp;
    }
}
