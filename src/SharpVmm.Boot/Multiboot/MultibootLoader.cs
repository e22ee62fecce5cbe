using System.Buffers.Binary;
using System.Text;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;

namespace SharpVmm.Boot.Multiboot;

/// <summary>
/// Boots a Multiboot v1 kernel the way QEMU's <c>-kernel</c> does for an ELF image: PT_LOAD segments copied to their
/// physical addresses with the rest of each segment (bss) zeroed, then the CPU in 32-bit protected mode with flat
/// 4 GiB segments, paging and interrupts off, EAX = 0x2BADB002 and EBX = the Multiboot information structure:
/// mem_lower/mem_upper, the command line "&lt;kernel path&gt; &lt;append&gt;", the modules (<c>--initrd</c> as module 0,
/// placed page-aligned after the kernel), the memory map and the boot loader's name.
/// <para>
/// The loader's own structures use the fixed window of <see cref="LowMemoryLayout"/>: GDT at 0x80000, the information
/// structure, memory map and module list at 0x93000, the command line at 0x94000, a stack below 0x9F000; ACPI tables
/// sit in [0xE0000, 1 MiB). A kernel whose segments overlap [0x80000, 1 MiB) or do not lie in RAM is refused.
/// </para>
/// </summary>
public static class MultibootLoader
{
    public const uint BootloaderMagic = 0x2BAD_B002;
    public const ulong InfoAddress = LowMemoryLayout.ZeroPage;
    public const ulong CommandLineAddress = LowMemoryLayout.CommandLine;
    public const string BootloaderName = "sharpvmm";

    // Information structure flags (Multiboot 0.6.96, section 3.3).
    public const uint InfoMemory = 1u << 0, InfoCmdline = 1u << 2, InfoMods = 1u << 3, InfoMmap = 1u << 6, InfoLoaderName = 1u << 9;

    private const int InfoSize = 88;
    private const ulong ModuleListAddress = InfoAddress + 0x100;
    private const ulong ModuleStringAddress = InfoAddress + 0x200;
    private const int ModuleStringMax = 0x400;
    private const ulong LoaderNameAddress = InfoAddress + 0x600;
    private const ulong MemoryMapAddress = InfoAddress + 0x700;
    private const int MemoryMapEntrySize = 24;
    private const int MaxMemoryMapEntries = (0x1000 - 0x700) / MemoryMapEntrySize;
    private const ulong PageMask = 0xFFF;

    /// <summary>True when <paramref name="image"/> has a Multiboot v1 header (the machine then boots it with this loader).</summary>
    public static bool IsMultiboot(ReadOnlySpan<byte> image) => MultibootHeader.Find(image) is not null;

    public static VcpuState Load(GuestMemory memory, MultibootBootSpec spec) => Load(memory, spec, out _);

    public static VcpuState Load(GuestMemory memory, MultibootBootSpec spec, out MultibootLayout layout)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(spec);
        var image = spec.Kernel.Span;
        var header = MultibootHeader.Find(image) ?? throw new BootException("the kernel has no Multiboot header in its first 8 KiB");
        uint unknown = header.Flags & MultibootHeader.RequiredMask & ~MultibootHeader.KnownRequirements;
        if (unknown != 0)
            throw new BootException($"the multiboot kernel requires features this loader does not know (header flags 0x{header.Flags:x}, unknown bits 0x{unknown:x})");
        if (!Elf32Image.IsElf(image))
            throw new BootException("the multiboot kernel is not an ELF file; images that need the a.out kludge (header load addresses) are not supported");
        var elf = Elf32Image.Parse(image);
        uint entry = elf.PhysicalEntry();

        var low = memory.FindRegion(0);
        if (low is null || low.GuestEnd <= LowMemoryLayout.OneMiB)
            throw new BootException("guest RAM must start at address 0 and extend past 1 MiB to boot a multiboot kernel");
        ulong imageStart = ulong.MaxValue, imageEnd = 0;
        foreach (var s in elf.Segments)
        {
            ulong start = s.PhysicalAddress, end = start + s.MemorySize;
            if (start < LowMemoryLayout.OneMiB && end > LowMemoryLayout.LoaderAreaStart)
                throw new BootException($"the multiboot kernel's segment at 0x{start:x}..0x{end:x} overlaps the loader's area 0x{LowMemoryLayout.LoaderAreaStart:x}..0x{LowMemoryLayout.OneMiB:x} (GDT, multiboot information, stack, ACPI tables): link it at 1 MiB or above");
            if (!memory.IsRam(start, end - start))
                throw new BootException($"the multiboot kernel's segment at 0x{start:x}..0x{end:x} does not lie in guest RAM ({memory.TotalSize >> 20} MiB): give the VM more memory");
            imageStart = Math.Min(imageStart, start);
            imageEnd = Math.Max(imageEnd, end);
        }

        byte[] cmdline = Encoding.ASCII.GetBytes(spec.CommandLine + "\0");
        if ((ulong)cmdline.Length > LowMemoryLayout.CommandLineMax)
            throw new BootException($"the multiboot command line is {cmdline.Length} bytes; at most {LowMemoryLayout.CommandLineMax - 1} fit");

        ulong modStart = 0, modEnd = 0;
        if (spec.Module is { } module)
        {
            modStart = (imageEnd + PageMask) & ~PageMask;
            modEnd = modStart + (ulong)module.Length;
            if (modEnd > low.GuestEnd || modEnd > uint.MaxValue)
                throw new BootException($"the module (--initrd, {module.Length} bytes) does not fit in guest RAM after the kernel (0x{modStart:x}..0x{modEnd:x}, RAM below the MMIO hole ends at 0x{low.GuestEnd:x}): give the VM more memory");
        }
        byte[] modString = Encoding.ASCII.GetBytes((spec.ModulePath ?? "") + "\0");
        if (modString.Length > ModuleStringMax)
            throw new BootException($"the module's path is longer than {ModuleStringMax - 1} bytes");

        var e820 = E820.Build(memory);
        if (e820.Count > MaxMemoryMapEntries)
            throw new BootException($"the memory map has {e820.Count} entries, more than the {MaxMemoryMapEntries} the multiboot loader's area holds");
        uint memLower = (uint)(LowMemoryLayout.EbdaStart / 1024);
        uint memUpper = (uint)(Math.Min(low.GuestEnd, 1UL << 32) - LowMemoryLayout.OneMiB) / 1024;

        // Everything checked: now write. Segments first (file bytes, then zeros up to the memory size: the bss).
        foreach (var s in elf.Segments)
        {
            memory.Write(s.PhysicalAddress, image.Slice((int)s.FileOffset, (int)s.FileSize));
            Zero(memory, (ulong)s.PhysicalAddress + s.FileSize, s.MemorySize - s.FileSize);
        }
        if (spec.Module is { } m) memory.Write(modStart, m.Span);

        Span<byte> info = stackalloc byte[InfoSize];
        info.Clear();
        uint flags = InfoMemory | InfoCmdline | InfoMods | InfoMmap | InfoLoaderName;
        BinaryPrimitives.WriteUInt32LittleEndian(info, flags);
        BinaryPrimitives.WriteUInt32LittleEndian(info[4..], memLower);
        BinaryPrimitives.WriteUInt32LittleEndian(info[8..], memUpper);
        BinaryPrimitives.WriteUInt32LittleEndian(info[16..], (uint)CommandLineAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(info[20..], spec.Module is null ? 0u : 1u);
        BinaryPrimitives.WriteUInt32LittleEndian(info[24..], (uint)ModuleListAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(info[44..], (uint)(e820.Count * MemoryMapEntrySize));
        BinaryPrimitives.WriteUInt32LittleEndian(info[48..], (uint)MemoryMapAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(info[64..], (uint)LoaderNameAddress);
        memory.Write(InfoAddress, info);

        Span<byte> mod = stackalloc byte[16];
        mod.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(mod, (uint)modStart);
        BinaryPrimitives.WriteUInt32LittleEndian(mod[4..], (uint)modEnd);
        BinaryPrimitives.WriteUInt32LittleEndian(mod[8..], (uint)ModuleStringAddress);
        memory.Write(ModuleListAddress, mod);
        memory.Write(ModuleStringAddress, modString);
        memory.Write(LoaderNameAddress, Encoding.ASCII.GetBytes(BootloaderName + "\0"));

        // Memory map entries: size (of the rest: 20), base, length, type.
        var map = new byte[e820.Count * MemoryMapEntrySize];
        for (int i = 0; i < e820.Count; i++)
        {
            var e = map.AsSpan(i * MemoryMapEntrySize);
            BinaryPrimitives.WriteUInt32LittleEndian(e, 20);
            BinaryPrimitives.WriteUInt64LittleEndian(e[4..], e820[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(e[12..], e820[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(e[20..], (uint)e820[i].Type);
        }
        memory.Write(MemoryMapAddress, map);
        memory.Write(CommandLineAddress, cmdline);

        var state = EntryState.Protected(Gdt.Write(memory, longMode: false), entry, (uint)LowMemoryLayout.StackTop);
        state[Gpr.Rax] = BootloaderMagic;
        state[Gpr.Rbx] = InfoAddress;
        layout = new MultibootLayout(entry, imageStart, imageEnd, InfoAddress, modStart, modEnd, memLower, memUpper, e820);
        return state;
    }

    private static void Zero(GuestMemory memory, ulong address, ulong length)
    {
        Span<byte> zeros = stackalloc byte[4096];
        zeros.Clear();
        while (length > 0)
        {
            int n = (int)Math.Min(length, (ulong)zeros.Length);
            memory.Write(address, zeros[..n]);
            address += (ulong)n;
            length -= (ulong)n;
        }
    }
}
