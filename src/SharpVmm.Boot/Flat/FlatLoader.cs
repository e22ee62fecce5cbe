using SharpVmm.Core.Cpu;
using SharpVmm.Memory;

namespace SharpVmm.Boot.Flat;

/// <summary>
/// Loads a raw binary at a guest-physical address and returns the vCPU state that starts it there.
/// <list type="bullet">
/// <item><b>Real</b>: CS = address >> 4, IP = address &amp; 0xF, DS = ES = FS = GS = CS, SS:SP = 0x9000:0xF000
/// (linear <see cref="LowMemoryLayout.StackTop"/>). The address must be below 1 MiB.</item>
/// <item><b>Protected</b>: GDT at <see cref="LowMemoryLayout.Gdt"/>, CS = 0x10 (32-bit, base 0, 4 GiB), data
/// selectors 0x18, ESP = <see cref="LowMemoryLayout.StackTop"/>, paging off. The binary must end below 4 GiB.</item>
/// <item><b>Long</b>: the same GDT with a 64-bit CS, identity-mapped paging over the first
/// <see cref="PageTables.CoverageFor"/> bytes (≥ 4 GiB, MMIO hole included), RSP = <see cref="LowMemoryLayout.StackTop"/>.
/// The binary must lie inside the mapped range.</item>
/// </list>
/// In every mode interrupts are off (RFLAGS = 2) and there is no usable IDT. The loader's structures and the stack all
/// live in [<see cref="LowMemoryLayout.LoaderAreaStart"/>, <see cref="LowMemoryLayout.LoaderAreaEnd"/>); a binary that
/// overlaps that window is refused in every mode, so the stack never runs into code either.
/// </summary>
public static class FlatLoader
{
    /// <summary>SS in real mode; SP is <see cref="LowMemoryLayout.StackTop"/> minus its base (0xF000).</summary>
    public const ushort RealModeStackSegment = 0x9000;

    public static VcpuState Load(GuestMemory memory, ReadOnlySpan<byte> image, ulong address, EntryMode mode)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (image.IsEmpty) throw new BootException("the flat binary is empty");
        ulong length = (ulong)image.Length;
        ulong end = address + length;
        if (end < address) throw new BootException($"a {length}-byte binary at 0x{address:x} wraps the address space");

        if (address < LowMemoryLayout.LoaderAreaEnd && end > LowMemoryLayout.LoaderAreaStart)
            throw new BootException($"the binary at 0x{address:x}..0x{end:x} overlaps the loader's area 0x{LowMemoryLayout.LoaderAreaStart:x}..0x{LowMemoryLayout.LoaderAreaEnd:x} (GDT, page tables, stack): load it elsewhere, e.g. at 0x1000 or 0x100000");
        if (!memory.IsRam(LowMemoryLayout.LoaderAreaStart, LowMemoryLayout.LoaderAreaEnd - LowMemoryLayout.LoaderAreaStart))
            throw new BootException("guest RAM must cover the first 640 KiB (the loader keeps its GDT, page tables and stack at 0x80000..0xA0000)");

        switch (mode)
        {
            case EntryMode.Real:
                if (address > 0xF_FFFF)
                    throw new BootException($"a real-mode binary must start below 1 MiB (CS = address >> 4), not at 0x{address:x}");
                break;
            case EntryMode.Protected:
                if (end > 1UL << 32)
                    throw new BootException($"a protected-mode binary must end below 4 GiB, not at 0x{end:x}");
                break;
            case EntryMode.Long:
                ulong mapped = PageTables.CoverageFor(memory);
                if (end > mapped)
                    throw new BootException($"a long-mode binary must lie in the identity-mapped first {mapped >> 30} GiB, not end at 0x{end:x}");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown entry mode");
        }

        if (!IsRam(memory, address, length))
            throw new BootException($"the binary at 0x{address:x}..0x{end:x} does not lie in guest RAM: load it lower or give the VM more memory");
        memory.Write(address, image);

        switch (mode)
        {
            case EntryMode.Real:
                return EntryState.Real((ushort)(address >> 4), (ushort)(address & 0xF),
                    RealModeStackSegment, (ushort)(LowMemoryLayout.StackTop - ((ulong)RealModeStackSegment << 4)));
            case EntryMode.Protected:
                return EntryState.Protected(Gdt.Write(memory, longMode: false), (uint)address, (uint)LowMemoryLayout.StackTop);
            default:
                var gdt = Gdt.Write(memory, longMode: true);
                ulong cr3 = PageTables.Write(memory, PageTables.CoverageFor(memory));
                return EntryState.Long(gdt, cr3, address, LowMemoryLayout.StackTop);
        }
    }

    /// <summary>True when [address, address+length) is RAM, possibly across adjacent regions (no hole in between).</summary>
    private static bool IsRam(GuestMemory memory, ulong address, ulong length)
    {
        while (length > 0)
        {
            var r = memory.FindRegion(address);
            if (r is null) return false;
            ulong n = Math.Min(length, r.GuestEnd - address);
            address += n;
            length -= n;
        }
        return true;
    }
}
