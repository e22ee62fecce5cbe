using System.Buffers.Binary;

namespace SharpVmm.Boot.Linux;

/// <summary>
/// The bzImage setup header (Documentation/arch/x86/boot.rst, "The real-mode kernel header"), read and checked.
/// Offsets are from the start of the file, which are also its offsets inside struct boot_params.
/// </summary>
public sealed class SetupHeader
{
    public const int Offset = 0x1F1;
    public const int SetupSectsOffset = 0x1F1;
    public const int SysSizeOffset = 0x1F4;
    public const int VidModeOffset = 0x1FA;
    public const int BootFlagOffset = 0x1FE;
    public const int JumpOffset = 0x200;
    public const int MagicOffset = 0x202;
    public const int VersionOffset = 0x206;
    public const int TypeOfLoaderOffset = 0x210;
    public const int LoadFlagsOffset = 0x211;
    public const int Code32StartOffset = 0x214;
    public const int RamdiskImageOffset = 0x218;
    public const int RamdiskSizeOffset = 0x21C;
    public const int HeapEndPtrOffset = 0x224;
    public const int CmdLinePtrOffset = 0x228;
    public const int InitrdAddrMaxOffset = 0x22C;
    public const int KernelAlignmentOffset = 0x230;
    public const int RelocatableKernelOffset = 0x234;
    public const int MinAlignmentOffset = 0x235;
    public const int XLoadFlagsOffset = 0x236;
    public const int CmdlineSizeOffset = 0x238;
    public const int PrefAddressOffset = 0x258;
    public const int InitSizeOffset = 0x260;
    /// <summary>The header ends before offset 0x290 in struct boot_params (edd_mbr_sig_buffer starts there).</summary>
    public const int MaxEnd = 0x290;

    public const ushort BootFlagValue = 0xAA55;
    /// <summary>"HdrS" read as a little-endian 32-bit value.</summary>
    public const uint MagicValue = 0x5372_6448;

    /// <summary>
    /// Protocol 2.12 (Linux 3.8) is the minimum: it introduced xloadflags, and XLF_KERNEL_64 there is the only way to
    /// know that the kernel has the 64-bit entry point at offset 0x200 that this loader jumps to. Every field the
    /// loader relies on (cmdline_size 2.06, pref_address/init_size 2.10) is older than that.
    /// </summary>
    public const ushort MinimumVersion = 0x020C;

    public const byte LoadedHigh = 0x01;
    public const byte CanUseHeap = 0x80;
    public const ushort XlfKernel64 = 0x0001;
    public const ushort XlfCanBeLoadedAbove4G = 0x0002;

    private SetupHeader() { }

    /// <summary>setup_sects as stored (0 means 4).</summary>
    public byte SetupSects { get; private init; }
    /// <summary>Bytes of the real-mode part (boot sector + setup sectors); the protected-mode kernel follows.</summary>
    public int SetupSize => ((SetupSects == 0 ? 4 : SetupSects) + 1) * 512;
    /// <summary>Size of the protected-mode code in 16-byte paragraphs.</summary>
    public uint SysSize { get; private init; }
    public ushort Version { get; private init; }
    public byte LoadFlags { get; private init; }
    public uint Code32Start { get; private init; }
    /// <summary>Highest address the initrd may occupy (its last byte).</summary>
    public uint InitrdAddrMax { get; private init; }
    public uint KernelAlignment { get; private init; }
    public bool Relocatable { get; private init; }
    public ushort XLoadFlags { get; private init; }
    /// <summary>Longest command line the kernel accepts, not counting the terminating NUL.</summary>
    public uint CmdlineSize { get; private init; }
    public ulong PrefAddress { get; private init; }
    /// <summary>Bytes of memory the kernel needs from its (aligned) run address to decompress and start.</summary>
    public uint InitSize { get; private init; }
    /// <summary>End offset of the header in the file (0x202 + the jump's displacement byte), at most <see cref="MaxEnd"/>.</summary>
    public int End { get; private init; }

    public string VersionText => $"{Version >> 8}.{Version & 0xFF:D2}";

    /// <summary>Reads and validates the header of <paramref name="image"/>; throws <see cref="BootException"/> with the reason.</summary>
    public static SetupHeader Parse(ReadOnlySpan<byte> image)
    {
        if (image.Length >= 4 && image[0] == 0x7F && image[1] == (byte)'E' && image[2] == (byte)'L' && image[3] == (byte)'F')
            throw new BootException("the kernel is an ELF file (vmlinux), not a bzImage: pass the compressed bzImage (/boot/vmlinuz-*)");
        if (image.Length >= 2 && image[0] == 0x1F && image[1] == 0x8B)
            throw new BootException("the kernel file is gzip data, not a bzImage: pass /boot/vmlinuz-* as shipped");
        if (image.Length < VersionOffset + 2)
            throw new BootException($"the kernel file is {image.Length} bytes, too short to be a Linux bzImage");
        if (U16(image, BootFlagOffset) != BootFlagValue || U32(image, MagicOffset) != MagicValue)
            throw new BootException("the kernel file is not a Linux bzImage (no 0xAA55 boot flag and \"HdrS\" setup header at 0x1FE/0x202): pass /boot/vmlinuz-*");

        ushort version = U16(image, VersionOffset);
        if (version < MinimumVersion)
            throw new BootException($"the kernel uses Linux boot protocol {version >> 8}.{version & 0xFF:D2}; SharpVmm enters the kernel at its 64-bit entry point, which needs protocol 2.12 (Linux 3.8) or newer: use a newer kernel");

        int end = Math.Min(JumpOffset + 2 + image[JumpOffset + 1], MaxEnd);
        if (end < InitSizeOffset + 4)
            throw new BootException($"the bzImage setup header ends at 0x{end:x}, before the protocol {version >> 8}.{version & 0xFF:D2} fields it must have: the kernel file is damaged");
        if (image.Length < end)
            throw new BootException($"the kernel file is truncated ({image.Length} bytes) inside its setup header");

        var h = new SetupHeader
        {
            SetupSects = image[SetupSectsOffset],
            SysSize = U32(image, SysSizeOffset),
            Version = version,
            LoadFlags = image[LoadFlagsOffset],
            Code32Start = U32(image, Code32StartOffset),
            InitrdAddrMax = U32(image, InitrdAddrMaxOffset),
            KernelAlignment = U32(image, KernelAlignmentOffset),
            Relocatable = image[RelocatableKernelOffset] != 0,
            XLoadFlags = U16(image, XLoadFlagsOffset),
            CmdlineSize = U32(image, CmdlineSizeOffset),
            PrefAddress = BinaryPrimitives.ReadUInt64LittleEndian(image[PrefAddressOffset..]),
            InitSize = U32(image, InitSizeOffset),
            End = end,
        };

        long expected = h.SetupSize + (long)h.SysSize * 16;
        if (image.Length <= h.SetupSize || image.Length < expected)
            throw new BootException($"the kernel file is truncated: its header says {expected} bytes ({h.SetupSize} of setup + {(long)h.SysSize * 16} of kernel) but the file has {image.Length}; fetch it again");
        if (h.SysSize == 0)
            throw new BootException("the bzImage header gives a protected-mode kernel size (syssize) of 0: the kernel file is damaged");
        if ((h.LoadFlags & LoadedHigh) == 0)
            throw new BootException("the kernel is a zImage (loaded below 1 MiB), not a bzImage: build or fetch a bzImage");
        if ((h.XLoadFlags & XlfKernel64) == 0)
            throw new BootException("the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear in xloadflags): SharpVmm boots x86-64 kernels only");
        if (h.InitSize == 0)
            throw new BootException("the bzImage header gives init_size 0: the kernel file is damaged");
        if (h.Relocatable && (h.KernelAlignment == 0 || (h.KernelAlignment & (h.KernelAlignment - 1)) != 0))
            throw new BootException($"the bzImage header gives kernel_alignment 0x{h.KernelAlignment:x}, which is not a power of two: the kernel file is damaged");
        return h;
    }

    private static ushort U16(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(b[offset..]);
    private static uint U32(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b[offset..]);
}
