using SharpVmm.Core.Platform;

namespace SharpVmm.Boot;

/// <summary>
/// Where the loaders put their own structures in guest RAM. Everything lives in one fixed window,
/// [<see cref="LoaderAreaStart"/>, <see cref="LoaderAreaEnd"/>), high in the first 640 KiB, so that the addresses
/// guests like to be loaded at (0x1000, 0x7C00, 0x10000, 1 MiB) stay free. The flat loader refuses a binary that
/// overlaps the window; Linux is loaded at 1 MiB and never touches it.
/// <code>
///   0x8_0000  GDT (one page)
///   0x8_1000  PML4
///   0x8_2000  PDPT
///   0x8_3000  page directories, one per GiB, up to 16 (identity map of the first 16 GiB at most)
///   0x9_3000  Linux zero page (struct boot_params)
///   0x9_4000  Linux command line (up to 16 KiB)
///   0x9_8000  boot stack, growing down from 0x9_F000
///   0x9_FC00  EBDA (reserved in the e820 map)
/// </code>
/// Linux only needs these until it has copied boot_params and the command line and built its own page tables, so the
/// e820 map reports [0, 0x9_FC00) as usable RAM: the kernel is free to reuse the window afterwards.
/// </summary>
public static class LowMemoryLayout
{
    public const ulong LoaderAreaStart = 0x8_0000;
    public const ulong LoaderAreaEnd = 0xA_0000;

    public const ulong Gdt = 0x8_0000;
    public const ulong Pml4 = 0x8_1000;
    public const ulong Pdpt = 0x8_2000;
    public const ulong PageDirectories = 0x8_3000;
    /// <summary>At most this many page directories (each maps 1 GiB with 2 MiB pages).</summary>
    public const int MaxPageDirectories = 16;

    public const ulong ZeroPage = 0x9_3000;
    public const ulong CommandLine = 0x9_4000;
    public const ulong CommandLineMax = 0x4000;

    public const ulong StackBottom = 0x9_8000;
    /// <summary>Initial stack pointer for every entry mode (real mode: SS = 0x9000, SP = 0xF000).</summary>
    public const ulong StackTop = 0x9_F000;

    /// <summary>Start of the extended BIOS data area; [EbdaStart, 0xA0000) is reserved in the e820 map.</summary>
    public const ulong EbdaStart = 0x9_FC00;
    /// <summary>The legacy VGA window and option ROM area [0xA0000, 0xE0000) is neither RAM nor reserved in the map.</summary>
    public const ulong VgaStart = 0xA_0000;
    /// <summary>The BIOS area [0xE0000, 1 MiB): reserved in the e820 map; ACPI tables go here by default.</summary>
    public const ulong BiosAreaStart = PcLayout.AcpiTablesBase;
    public const ulong OneMiB = 0x10_0000;
}
