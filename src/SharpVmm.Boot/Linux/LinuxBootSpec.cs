namespace SharpVmm.Boot.Linux;

/// <summary>What to boot: a bzImage, an optional initrd, the command line and where the ACPI tables are.</summary>
public sealed record LinuxBootSpec
{
    /// <summary>The whole bzImage file (/boot/vmlinuz-*).</summary>
    public required ReadOnlyMemory<byte> Kernel { get; init; }
    /// <summary>An initramfs (cpio, optionally compressed with a method the kernel was built for), or null.</summary>
    public ReadOnlyMemory<byte>? Initrd { get; init; }
    /// <summary>Kernel command line, ASCII; at most the kernel's cmdline_size bytes.</summary>
    public string CommandLine { get; init; } = "";
    /// <summary>RSDP address from <see cref="Acpi.AcpiTables.Build(Acpi.AcpiSpec, Memory.GuestMemory, ulong)"/>, or null for a guest without ACPI.</summary>
    public ulong? AcpiRsdp { get; init; }
    /// <summary>
    /// Where the ACPI tables are, to be marked ACPI in the e820 map. Tables in the BIOS area [0xE0000, 1 MiB) are
    /// reserved already, so this can stay empty for them (the default placement).
    /// </summary>
    public ulong AcpiTablesBase { get; init; }
    public ulong AcpiTablesLength { get; init; }
}

/// <summary>Where <see cref="LinuxLoader"/> put things, for logs and tests.</summary>
public sealed record LinuxBootLayout(
    ulong KernelAddress,
    ulong KernelSize,
    ulong RunStart,
    ulong RunEnd,
    ulong InitrdAddress,
    ulong InitrdSize,
    ulong ZeroPageAddress,
    ulong CommandLineAddress,
    IReadOnlyList<E820Entry> E820,
    SetupHeader Header);
