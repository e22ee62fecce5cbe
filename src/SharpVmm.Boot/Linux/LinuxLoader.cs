using System.Text;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;

namespace SharpVmm.Boot.Linux;

/// <summary>
/// Loads a bzImage through the Linux x86 64-bit boot protocol: the protected-mode kernel at 1 MiB, the zero page and
/// command line in the loader area, the initrd at the top of low RAM, and a vCPU in long mode at the 64-bit entry
/// point (load address + 0x200) with RSI pointing at the zero page.
/// <para>
/// Load address: always 1 MiB (the traditional code32_start). A relocatable kernel (this is what Debian ships) moves
/// itself: its decompressor runs at max(load address rounded up to kernel_alignment, pref_address) and needs init_size
/// bytes there; a non-relocatable one runs at pref_address. Either way the loader checks that this run window lies in
/// RAM and keeps the initrd out of it. With KASLR the kernel may pick another spot, but it avoids the initrd, command
/// line and zero page by itself.
/// </para>
/// </summary>
public static class LinuxLoader
{
    public const ulong KernelLoadAddress = LowMemoryLayout.OneMiB;
    /// <summary>The 64-bit entry point's offset in the protected-mode kernel (startup_64).</summary>
    public const ulong Entry64Offset = 0x200;
    private const ulong PageMask = 0xFFF;

    public static VcpuState Load(GuestMemory memory, LinuxBootSpec spec) => Load(memory, spec, out _);

    public static VcpuState Load(GuestMemory memory, LinuxBootSpec spec, out LinuxBootLayout layout)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(spec);
        var kernel = spec.Kernel.Span;
        var header = SetupHeader.Parse(kernel);
        var payload = kernel[header.SetupSize..];

        var low = memory.FindRegion(0);
        if (low is null || low.GuestEnd < KernelLoadAddress)
            throw new BootException("guest RAM must start at address 0 and extend past 1 MiB to boot Linux");

        ulong kernelEnd = KernelLoadAddress + (ulong)payload.Length;
        ulong runStart = RunAddress(header);
        ulong runEnd = runStart + header.InitSize;
        if (runStart >= 1UL << 52 || runEnd < runStart)
            throw new BootException($"the bzImage header asks to run the kernel at 0x{runStart:x} (pref_address 0x{header.PrefAddress:x}): the kernel file is damaged");
        ulong occupiedEnd = Math.Max(kernelEnd, runEnd);
        if (occupiedEnd > low.GuestEnd)
            throw new BootException($"guest RAM below the MMIO hole ends at {low.GuestEnd >> 20} MiB, but this kernel needs memory up to {(occupiedEnd + 0xFFFFF) >> 20} MiB to decompress and start (run address 0x{runStart:x} + init_size 0x{header.InitSize:x}): give the VM more memory");

        byte[] cmdline = EncodeCommandLine(spec.CommandLine, header);

        ulong initrdAddress = 0, initrdSize = 0;
        if (spec.Initrd is { Length: > 0 } initrd)
        {
            initrdSize = (ulong)initrd.Length;
            initrdAddress = PlaceInitrd(header, low, occupiedEnd, initrdSize, spec);
        }

        var e820 = E820.Build(memory, spec.AcpiTablesBase, spec.AcpiTablesLength);
        var zeroPage = ZeroPage.Build(kernel, header, LowMemoryLayout.CommandLine, initrdAddress, initrdSize, spec.AcpiRsdp ?? 0, e820);

        memory.Write(KernelLoadAddress, payload);
        if (initrdSize != 0) memory.Write(initrdAddress, spec.Initrd!.Value.Span);
        memory.Write(LowMemoryLayout.ZeroPage, zeroPage);
        memory.Write(LowMemoryLayout.CommandLine, cmdline);
        var gdt = Gdt.Write(memory, longMode: true);
        ulong cr3 = PageTables.Write(memory, PageTables.CoverageFor(memory));

        var state = EntryState.Long(gdt, cr3, KernelLoadAddress + Entry64Offset, LowMemoryLayout.StackTop);
        state[Gpr.Rsi] = LowMemoryLayout.ZeroPage;

        layout = new LinuxBootLayout(KernelLoadAddress, (ulong)payload.Length, runStart, runEnd, initrdAddress, initrdSize,
            LowMemoryLayout.ZeroPage, LowMemoryLayout.CommandLine, e820, header);
        return state;
    }

    /// <summary>Where the kernel decompresses itself when loaded at <see cref="KernelLoadAddress"/> (see startup_64).</summary>
    public static ulong RunAddress(SetupHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (!header.Relocatable) return header.PrefAddress != 0 ? header.PrefAddress : KernelLoadAddress;
        ulong align = header.KernelAlignment;
        ulong aligned = (KernelLoadAddress + align - 1) & ~(align - 1);
        return Math.Max(aligned, header.PrefAddress);
    }

    private static byte[] EncodeCommandLine(string commandLine, SetupHeader header)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        foreach (char c in commandLine)
            if (c == '\0' || c > 0x7E || (c < 0x20 && c != '\t'))
                throw new BootException($"the kernel command line contains the character U+{(int)c:X4}; use printable ASCII only");
        ulong max = Math.Min(header.CmdlineSize, LowMemoryLayout.CommandLineMax - 1);
        if ((ulong)commandLine.Length > max)
            throw new BootException($"the kernel command line is {commandLine.Length} bytes; this kernel accepts at most {max}");
        var bytes = new byte[commandLine.Length + 1];
        Encoding.ASCII.GetBytes(commandLine, bytes);
        return bytes;
    }

    /// <summary>
    /// The initrd goes page-aligned at the top of low RAM, no higher than initrd_addr_max allows, below ACPI tables
    /// placed in high low-RAM, and above everything the kernel occupies while it starts.
    /// </summary>
    private static ulong PlaceInitrd(SetupHeader header, MemoryRegion low, ulong occupiedEnd, ulong size, LinuxBootSpec spec)
    {
        ulong top = Math.Min((ulong)header.InitrdAddrMax + 1, low.GuestEnd);
        if (spec.AcpiTablesLength != 0 && spec.AcpiTablesBase >= occupiedEnd && spec.AcpiTablesBase < top)
            top = spec.AcpiTablesBase;
        ulong floor = (occupiedEnd + PageMask) & ~PageMask;
        ulong room = top > floor ? top - floor : 0;
        if (size > room)
            throw new BootException($"the initrd is {size >> 20} MiB but only {room >> 20} MiB of RAM lie between the kernel (ends 0x{floor:x}) and the initrd limit 0x{top:x}: give the VM more memory or use a smaller initrd");
        return (top - size) & ~PageMask;
    }
}
