using SharpVmm.Monitor.Commands;

namespace SharpVmm.Cli.Qemu;

/// <summary>-version, -help, -machine help, -device help, -cpu help, -accel help: for people at a terminal.</summary>
public static class QemuHelp
{
    public static string Text(string topic) => topic switch
    {
        "version" => Version(),
        "machine" => "Supported machines are:\nmicrovm              SharpVmm microvm: Linux booted directly, virtio-mmio devices, ACPI (default)\nnone                 empty machine\n",
        "device" => "Devices SharpVmm supports (-pci and -device variants are both virtio-mmio in SharpVmm):\n"
            + string.Concat(QemuDeviceParser.Types.Select(t => $"name \"{t}\"\n")),
        "cpu" => "Available CPUs:\n" + string.Concat(QemuCpuModels.Names.Select(n => $"x86 {n,-16} SharpVmm's CPU model\n")),
        "accel" => "Accelerators supported in QEMU binary:\ntcg (SharpVmm's x86-64 emulator)\nkvm\n",
        _ => Usage(),
    };

    private static string Version()
    {
        var v = QmpVersion.Default;
        return $"QEMU emulator version {v.Major}.{v.Minor}.{v.Micro} ({v.Package})\nThis is SharpVmm speaking QEMU's command line and QMP; it is not QEMU.\n";
    }

    private static string Usage() => Version() + """

usage: qemu-system-x86_64 [options]

SharpVmm's QEMU personality accepts the options libvirt's QEMU driver generates; others are refused by name.
Machine:   -machine microvm|none[,accel=kvm:tcg][,acpi=on]  -accel kvm|tcg  -cpu qemu64|max|host
           -m SIZE  -smp N  -name guest=NAME  -uuid UUID  -S  -no-shutdown  -no-reboot
Boot:      -kernel FILE  -initrd FILE  -append CMDLINE  -boot strict=on
Devices:   -device isa-serial|virtio-blk-pci|virtio-net-pci|virtio-rng-pci|virtio-balloon-pci (or -device variants)
           -blockdev driver=file|qcow2|raw,...  -drive file=F,format=raw|qcow2,if=none|virtio
           -netdev user|tap,ifname=NAME  -chardev socket|pty|file|stdio|null  -serial stdio|pty|file:PATH
Monitor:   -qmp unix:PATH,server=on,wait=off  -mon chardev=ID,mode=control
Process:   -daemonize  -pidfile FILE  -incoming defer|tcp:HOST:PORT  -add-fd set=N,fd=M  -msg timestamp=on
Accepted:  -nodefaults -no-user-config -nographic -display none -overcommit mem-lock=off -rtc base=utc
           -audiodev none -sandbox off
Help:      -version  -help  -machine help  -device help  -cpu help  -accel help
""";
}
