using SharpVmm.Core;
using SharpVmm.Devices.Net;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// Turns a QEMU command line into the <see cref="VmConfig"/> that <c>sharpvmm run</c> would build: one machine,
/// two front ends. What has no counterpart is refused here, naming the QEMU option.
/// </summary>
public static class QemuVmConfig
{
    /// <summary>RAM of the empty machine when -m is not given (QEMU's none machine has none; SharpVmm's smallest is 2 MiB).</summary>
    public const ulong EmptyMachineMemory = 2UL << 20;

    public static VmConfig Build(QemuInvocation q, Func<AcceleratorKind, (bool Usable, string Why)>? probe = null)
    {
        probe ??= Usable;
        var accel = ChooseAccelerator(q, probe);
        ulong memory = Memory(q);
        if (q.Machine == "none")
        {
            if (q.Kernel is not null || q.Disks.Count > 0 || q.Nics.Count > 0 || q.Rng || q.Balloon || q.SerialChardev is not null || q.TestDevices.Count > 0)
                throw new QemuArgException("-machine", "none is an empty board: give devices and -kernel to machine type 'microvm'");
            return new VmConfig { EmptyMachine = true, Accelerator = accel, MemoryBytes = q.MemoryBytes ?? EmptyMachineMemory, Cpus = q.Cpus, Serial = "none" };
        }
        if (q.Kernel is null)
            throw new QemuArgException("-kernel", "is required: SharpVmm's microvm boots a Linux kernel directly (there is no firmware to boot disks)");
        if (!q.Acpi)
            throw new QemuArgException("-no-acpi", "SharpVmm's microvm describes its virtio devices and power button in ACPI: enable ACPI (libvirt: <features><acpi/></features>)");
        return new VmConfig
        {
            Accelerator = accel,
            MemoryBytes = memory,
            Cpus = q.Cpus,
            Kernel = q.Kernel,
            Initrd = q.Initrd,
            Append = q.Append,
            Serial = SerialSpec(q),
            Disks = [.. q.Disks.Select(d => Disk(q, d))],
            Nets = [.. q.Nics.Select(n => Nic(q, n))],
            Rng = q.Rng,
            Balloon = q.Balloon,
            TestDevices = [.. q.TestDevices],
            NoReboot = q.NoReboot,
            IncomingMigration = q.Incoming is not null,
        };
    }

    /// <summary>Whether /dev/kvm can be used here (query-kvm's "present").</summary>
    public static bool KvmUsable() => Usable(AcceleratorKind.Kvm).Item1;

    private static (bool, string) Usable(AcceleratorKind kind)
    {
        if (kind != AcceleratorKind.Kvm) return (true, "");
        var (resolved, why) = AcceleratorChoice.Resolve(new VmConfig { Accelerator = AcceleratorKind.Auto, Kernel = "linux" });
        return (resolved == AcceleratorKind.Kvm, why);
    }

    /// <summary>The first accelerator of -accel / -machine accel= that works here (QEMU's kvm:tcg); tcg without any.</summary>
    private static AcceleratorKind ChooseAccelerator(QemuInvocation q, Func<AcceleratorKind, (bool Usable, string Why)> probe)
    {
        if (q.Accelerators.Count == 0) return AcceleratorKind.Emu;
        string why = "";
        foreach (var a in q.Accelerators)
        {
            var (usable, reason) = probe(a);
            if (usable) return a;
            why = reason;
        }
        throw new QemuArgException("-accel", $"kvm is not usable here ({why}): use tcg (libvirt: <domain type='qemu'>)");
    }

    private static ulong Memory(QemuInvocation q)
    {
        ulong? size = q.MemoryBytes;
        if (q.MemoryBackend is { } id)
        {
            if (!q.MemoryBackends.TryGetValue(id, out ulong backend))
                throw new QemuArgException("-machine", $"memory-backend '{id}' is not an -object memory-backend-ram");
            if (size is not null && size != backend)
                throw new QemuArgException("-machine", $"memory-backend '{id}' is {backend} bytes but -m says {size}");
            size = backend;
        }
        foreach (var (id2, _) in q.MemoryBackends)
            if (id2 != q.MemoryBackend) throw new QemuArgException("-object", $"memory-backend-ram '{id2}' is not the machine's memory-backend: SharpVmm has one RAM block");
        return size ?? (128UL << 20); // QEMU's default
    }

    /// <summary>COM1's backend in <c>sharpvmm run --serial</c> terms.</summary>
    private static string SerialSpec(QemuInvocation q)
    {
        if (q.SerialChardev is null) return q.NoGraphic && !q.NoDefaults ? "stdio" : "none";
        var c = q.Chardevs[q.SerialChardev];
        if (c.LogFile is not null && c.Backend != "pty")
            throw new QemuArgException("-chardev", $"'{c.Id}': logfile= is supported on pty chardevs only");
        return c.Backend switch
        {
            "pty" => c.LogFile is null ? "pty" : PtyWithLog(q, c),
            "file" => "file:" + FdSetPath(q, c.Path!),
            "stdio" => "stdio",
            "null" => "none",
            "socket" when c.Path is not null => "unix:" + c.Path,
            _ => throw new QemuArgException("-chardev", $"'{c.Id}': a serial port on an inherited socket (fd=) is not supported: use pty, file or a socket path"),
        };
    }

    /// <summary>A pty whose output is also logged: to the fd set's descriptor itself (a pipe only its owner could reopen), or to a file.</summary>
    private static string PtyWithLog(QemuInvocation q, QemuChardev c)
    {
        string path = FdSetPath(q, c.LogFile!);
        const string fdPrefix = "/proc/self/fd/";
        if (path.StartsWith(fdPrefix, StringComparison.Ordinal)) return "pty,logfd=" + path[fdPrefix.Length..];
        return $"pty,logfile={path}{(c.LogAppend ? ",logappend=on" : "")}";
    }

    /// <summary>/dev/fdset/N (an -add-fd set) opens the set's descriptor, as QEMU's qemu_open does.</summary>
    public static string FdSetPath(QemuInvocation q, string path)
    {
        const string prefix = "/dev/fdset/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal)) return path;
        if (!int.TryParse(path.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int set)
            || !q.FdSets.TryGetValue(set, out var fds))
            throw new QemuArgException("-add-fd", $"'{path}' names no fd set given with -add-fd set=N");
        return $"/proc/self/fd/{fds[0]}";
    }

    private static DiskSpec Disk(QemuInvocation q, QemuDiskDevice d)
    {
        var drive = q.Drives[d.Drive];
        return new DiskSpec(FdSetPath(q, drive.Path), drive.Format, drive.ReadOnly);
    }

    private static NetSpec Nic(QemuInvocation q, QemuNicDevice n)
    {
        var dev = q.Netdevs[n.Netdev];
        MacAddress? mac = n.Mac is null ? null : MacAddress.Parse(n.Mac);
        return new NetSpec(dev.Kind, dev.IfName, mac);
    }
}
