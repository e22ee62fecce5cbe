using System.Buffers.Binary;
using SharpVmm.Boot.Linux;

namespace SharpVmm.Boot.Tests;

/// <summary>
/// Builds a bzImage-shaped file in code: a setup header with the fields a 2.15 kernel has, followed by a
/// protected-mode "kernel" whose bytes are a known pattern. Lets every header test run without the Debian download.
/// </summary>
public sealed record SyntheticBzImage
{
    public ushort Version { get; init; } = 0x020F;
    public byte SetupSects { get; init; } = 4;
    public int PayloadSize { get; init; } = 0x3000;
    public ushort XLoadFlags { get; init; } = 0x7F;
    public byte LoadFlags { get; init; } = SetupHeader.LoadedHigh;
    public bool Relocatable { get; init; } = true;
    public uint KernelAlignment { get; init; } = 0x20_0000;
    public ulong PrefAddress { get; init; } = 0x100_0000;
    public uint InitSize { get; init; } = 0x40_0000;
    public uint InitrdAddrMax { get; init; } = 0x7FFF_FFFF;
    public uint CmdlineSize { get; init; } = 0x7FF;
    /// <summary>syssize override (paragraphs); default: the payload size in whole paragraphs (the kernel build pads to them).</summary>
    public uint? SysSize { get; init; }

    public int SetupSize => ((SetupSects == 0 ? 4 : SetupSects) + 1) * 512;

    public static byte PayloadByte(int i) => (byte)(i * 7 + 3);

    public byte[] Build()
    {
        var f = new byte[SetupSize + PayloadSize];
        var s = f.AsSpan();
        s[SetupHeader.SetupSectsOffset] = SetupSects;
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.SysSizeOffset..], SysSize ?? (uint)(PayloadSize / 16));
        BinaryPrimitives.WriteUInt16LittleEndian(s[SetupHeader.BootFlagOffset..], 0xAA55);
        s[SetupHeader.JumpOffset] = 0xEB;                 // jmp short over the header
        s[SetupHeader.JumpOffset + 1] = 0x6A;             // header ends at 0x202 + 0x6A = 0x26C
        "HdrS"u8.CopyTo(s[SetupHeader.MagicOffset..]);
        BinaryPrimitives.WriteUInt16LittleEndian(s[SetupHeader.VersionOffset..], Version);
        s[SetupHeader.LoadFlagsOffset] = LoadFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.Code32StartOffset..], 0x10_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.InitrdAddrMaxOffset..], InitrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.KernelAlignmentOffset..], KernelAlignment);
        s[SetupHeader.RelocatableKernelOffset] = (byte)(Relocatable ? 1 : 0);
        s[SetupHeader.MinAlignmentOffset] = 21;
        BinaryPrimitives.WriteUInt16LittleEndian(s[SetupHeader.XLoadFlagsOffset..], XLoadFlags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.CmdlineSizeOffset..], CmdlineSize);
        BinaryPrimitives.WriteUInt64LittleEndian(s[SetupHeader.PrefAddressOffset..], PrefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.InitSizeOffset..], InitSize);
        for (int i = 0; i < PayloadSize; i++) f[SetupSize + i] = PayloadByte(i);
        return f;
    }
}
