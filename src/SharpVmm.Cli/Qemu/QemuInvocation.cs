using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Qemu;

/// <summary>A character device (-chardev): what it connects to. <see cref="Fd"/> is an inherited descriptor.</summary>
public sealed record QemuChardev(string Id, string Backend, string? Path = null, int? Fd = null, string? LogFile = null, bool LogAppend = false);

/// <summary>A QMP monitor: on a chardev (-mon) or on an address of its own (-qmp).</summary>
public sealed record QemuMonitor(string? ChardevId, string? Address);

/// <summary>A disk source: a file in a format (from -blockdev's file/format nodes or -drive); <see cref="Protocol"/> for a -blockdev file node.</summary>
public sealed record QemuDrive(string Id, string Path, string Format, bool ReadOnly, bool Protocol = false);

/// <summary>A network backend (-netdev).</summary>
public sealed record QemuNetdev(string Id, NetBackendKind Kind, string? IfName);

/// <summary>What a QEMU command line asks for, before it becomes a <see cref="VmConfig"/>.</summary>
public sealed class QemuInvocation
{
    public string? Name { get; set; }
    public string? Uuid { get; set; }
    public bool Paused { get; set; }
    /// <summary>"microvm" or "none" (QEMU's empty machine, which libvirt probes with).</summary>
    public string Machine { get; set; } = "microvm";
    public bool Acpi { get; set; } = true;
    public List<AcceleratorKind> Accelerators { get; } = [];
    public string? Cpu { get; set; }
    public ulong? MemoryBytes { get; set; }
    /// <summary>-machine memory-backend=ID: the -object memory-backend-ram that must exist.</summary>
    public string? MemoryBackend { get; set; }
    public Dictionary<string, ulong> MemoryBackends { get; } = new(StringComparer.Ordinal);
    public int Cpus { get; set; } = 1;
    public string? Kernel { get; set; }
    public string? Initrd { get; set; }
    public string? Append { get; set; }
    public bool NoShutdown { get; set; }
    public bool NoReboot { get; set; }
    public bool NoDefaults { get; set; }
    public bool NoGraphic { get; set; }
    public bool MessageTimestamps { get; set; }
    public string? PidFile { get; set; }
    public bool Daemonize { get; set; }
    /// <summary>-sandbox on: the seccomp filter, as <c>run --sandbox on</c> installs it. Off by default, as in QEMU.</summary>
    public bool Sandbox { get; set; }
    public string? Incoming { get; set; }
    public Dictionary<string, QemuChardev> Chardevs { get; } = new(StringComparer.Ordinal);
    public List<QemuMonitor> Monitors { get; } = [];
    /// <summary>-add-fd set=N,fd=M: the descriptors of each fd set (first one is what /dev/fdset/N opens).</summary>
    public Dictionary<int, List<int>> FdSets { get; } = [];
    public Dictionary<string, string> Secrets { get; } = new(StringComparer.Ordinal);
    /// <summary>The chardev behind the isa-serial (COM1), or null for none.</summary>
    public string? SerialChardev { get; set; }
    /// <summary>The isa-serial's -device id (libvirt's "serial0"), listed under /machine/peripheral.</summary>
    public string? SerialDeviceId { get; set; }
    /// <summary>-blockdev nodes by node-name: protocol nodes (file) and format nodes pointing at them.</summary>
    public Dictionary<string, QemuDrive> Drives { get; } = new(StringComparer.Ordinal);
    public List<QemuDiskDevice> Disks { get; } = [];
    public Dictionary<string, QemuNetdev> Netdevs { get; } = new(StringComparer.Ordinal);
    public List<QemuNicDevice> Nics { get; } = [];
    public bool Rng { get; set; }
    /// <summary>-device pc-testdev and -device isa-debug-exit: QEMU's test-facing devices, for test kernels.</summary>
    public List<DeviceSpec> TestDevices { get; } = [];
    public bool Balloon { get; set; }
    /// <summary>-version, -help, -machine help, -device help: print and exit.</summary>
    public string? Help { get; set; }
}

/// <summary>A virtio-blk device on a drive; <see cref="Id"/> is what query-block calls its qdev.</summary>
public sealed record QemuDiskDevice(string? Id, string Drive);

/// <summary>A virtio-net device on a netdev.</summary>
public sealed record QemuNicDevice(string? Id, string Netdev, string? Mac);
