namespace SharpVmm.Boot.Multiboot;

/// <summary>What to boot through Multiboot v1: the kernel image, how it is named on the command line, and an optional module.</summary>
public sealed record MultibootBootSpec
{
    /// <summary>The whole kernel file: an ELF32 executable with a Multiboot header in its first 8 KiB.</summary>
    public required ReadOnlyMemory<byte> Kernel { get; init; }
    /// <summary>The kernel's path as given, which starts the command line (as QEMU passes it).</summary>
    public required string KernelPath { get; init; }
    /// <summary>The user's command line (<c>--append</c>), or null.</summary>
    public string? Append { get; init; }
    /// <summary>Module 0 (<c>--initrd</c>), or null for none.</summary>
    public ReadOnlyMemory<byte>? Module { get; init; }
    /// <summary>Module 0's string: its path, as QEMU gives it.</summary>
    public string? ModulePath { get; init; }

    /// <summary>"&lt;kernel path&gt; &lt;append&gt;", exactly as QEMU builds it (nothing the VMM adds for Linux).</summary>
    public string CommandLine => $"{KernelPath} {Append}";
}

/// <summary>Where <see cref="MultibootLoader"/> put things, for logs and tests.</summary>
public sealed record MultibootLayout(uint Entry, ulong ImageStart, ulong ImageEnd, ulong InfoAddress, ulong ModuleStart, ulong ModuleEnd,
    uint MemLowerKiB, uint MemUpperKiB, IReadOnlyList<E820Entry> MemoryMap);
