using SharpVmm.Core;
using SharpVmm.Devices.Bus;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Config;

/// <summary>
/// Everything needed to build one VM: what <c>sharpvmm run</c>'s options (and later a JSON config file) describe.
/// <see cref="Validate"/> turns every inconsistency into one clear <see cref="ConfigurationException"/>.
/// </summary>
public sealed record VmConfig
{
    public const int MaxVcpus = 255;

    public ulong MemoryBytes { get; init; } = 256UL << 20;
    public AcceleratorKind Accelerator { get; init; } = AcceleratorKind.Auto;
    /// <summary>The emulator's decoded-code cache budget (<c>--accel emu,tb-size=</c>); null = the emulator's default, 0 = unbounded.</summary>
    public long? CodeCacheBytes { get; init; }

    /// <summary>The emulator's second tier (<c>--accel emu,jit=</c>); null = the emulator's default.</summary>
    public Emulator.JitMode? Jit { get; init; }

    /// <summary>Executions before the emulator translates a block (<c>--accel emu,jit-threshold=</c>); null = the default.</summary>
    public int? JitThreshold { get; init; }

    /// <summary>The emulator's hypervisor CPUID leaves (<c>--accel emu,hypervisor=</c>); null = the emulator's default (on).</summary>
    public bool? HypervisorLeaves { get; init; }
    public int Cpus { get; init; } = 1;
    public string? Kernel { get; init; }
    public string? Initrd { get; init; }
    public string? Append { get; init; }
    public FlatImageSpec? Flat { get; init; }
    /// <summary>COM1's backend: stdio, file:PATH, unix:PATH or none.</summary>
    public string Serial { get; init; } = "stdio";
    public UnmappedAccessPolicy UnmappedAccess { get; init; } = UnmappedAccessPolicy.Ignore;
    /// <summary>virtio-blk disks, in the order the guest sees them (vda, vdb, ...).</summary>
    public IReadOnlyList<DiskSpec> Disks { get; init; } = [];
    /// <summary>A virtio-rng device fed from the host's random number generator.</summary>
    public bool Rng { get; init; }
    /// <summary>virtio-net NICs, in the order the guest sees them (eth0, eth1, ...).</summary>
    public IReadOnlyList<NetSpec> Nets { get; init; } = [];
    /// <summary>A virtio-console device (the guest's /dev/hvc0) on this backend: stdio, file:PATH, unix:PATH or none; null for no device.</summary>
    public string? Console { get; init; }

    /// <summary>How many virtio-mmio transports the options ask for (each takes one slot of the fixed layout).</summary>
    public int VirtioDeviceCount => Disks.Count + (Rng ? 1 : 0) + Nets.Count + (Console is not null ? 1 : 0) + (Balloon ? 1 : 0);
    /// <summary>QEMU's -no-reboot: a reset the guest asks for ends the run (exit 0) instead of restarting it.</summary>
    public bool NoReboot { get; init; }
    /// <summary>The VM receives its state by live migration (<c>--incoming</c>): disks stay closed until the source lets go of them.</summary>
    public bool IncomingMigration { get; init; }
    /// <summary>How the host backs guest RAM (--memory SIZE,merge=,hugepages=,prealloc=): KSM merging on by default.</summary>
    public GuestMemoryOptions MemoryOptions { get; init; } = new() { Merge = true };
    /// <summary>A virtio-balloon device the host sets a target for (QMP balloon).</summary>
    public bool Balloon { get; init; }
    /// <summary>Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest takes balloon pages back rather than run out of memory.</summary>
    public bool BalloonDeflateOnOom { get; init; }
    /// <summary>Optional test-facing devices (<c>--device</c>): pc-testdev, a moved isa-debug-exit.</summary>
    public IReadOnlyList<DeviceSpec> TestDevices { get; init; } = [];

    /// <summary>
    /// QEMU's <c>-machine none</c>: a board with vCPUs at their power-on state, RAM and no devices or payload. What
    /// libvirt starts to ask an emulator what it supports; it never runs guest code.
    /// </summary>
    public bool EmptyMachine { get; init; }

    public void Validate()
    {
        if (Cpus is < 1 or > MaxVcpus) throw new ConfigurationException($"--cpus {Cpus} is out of range: use 1 to {MaxVcpus}");
        if (MemoryBytes < (2UL << 20)) throw new ConfigurationException("--memory must be at least 2M");
        if ((MemoryBytes & 0xFFF) != 0) throw new ConfigurationException("--memory must be a multiple of 4K");
        if (EmptyMachine)
        {
            if (Kernel is not null || Flat is not null || VirtioDeviceCount > 0)
                throw new ConfigurationException("the empty machine (none) takes no payload and no devices: use microvm");
            return;
        }
        if (Kernel is not null && Flat is not null) throw new ConfigurationException("--kernel and --flat are alternatives: give one");
        if (Kernel is null && Flat is null) throw new ConfigurationException("nothing to boot: give --kernel FILE or --flat FILE@ADDR");
        if (Kernel is null && (Initrd is not null || Append is not null))
            throw new ConfigurationException("--initrd and --append need --kernel");
        RequireFile(Kernel, "--kernel");
        RequireFile(Initrd, "--initrd");
        RequireFile(Flat?.Path, "--flat");
        foreach (var d in Disks) RequireFile(d.Path, "--disk");
        if (Kernel is null && VirtioDeviceCount > 0)
            throw new ConfigurationException("virtio devices (--disk, --rng, --net, --console, --balloon) need --kernel: guests find them through ACPI");
        if (VirtioDeviceCount > Core.Platform.PcLayout.VirtioMmioSlots)
            throw new ConfigurationException($"at most {Core.Platform.PcLayout.VirtioMmioSlots} virtio devices (--disk, --rng, --net, --console and --balloon together)");
        NetSpec.ValidateAll(Nets);
        int testdevs = 0, debugExits = 0, pvpanics = 0;
        foreach (var d in TestDevices)
        {
            if (d.Driver == DeviceSpec.PcTestDev) testdevs++;
            else if (d.Driver == DeviceSpec.IsaDebugExit) debugExits++;
            else if (d.Driver == DeviceSpec.PvPanic) pvpanics++;
        }
        if (testdevs > 1 || debugExits > 1 || pvpanics > 1) throw new ConfigurationException("--device pc-testdev, isa-debug-exit and pvpanic can each be given once");
        if (pvpanics > 0 && Kernel is null)
            throw new ConfigurationException("--device pvpanic needs --kernel: guests find it through ACPI");
        if (Console == "stdio" && Serial == "stdio")
            throw new ConfigurationException("--console stdio needs the terminal that --serial already uses: give --serial none or file:PATH, or --console file:PATH");
        if (Flat is not null && Flat.Address >= MemoryBytes)
            throw new ConfigurationException($"--flat address 0x{Flat.Address:x} is beyond guest RAM ({MemoryBytes >> 20} MiB)");
    }

    private static void RequireFile(string? path, string option)
    {
        if (path is not null && !File.Exists(path))
            throw new ConfigurationException($"{option}: no such file '{path}'");
    }
}
