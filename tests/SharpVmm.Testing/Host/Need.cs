namespace SharpVmm.Testing;

/// <summary>
/// A host feature a test needs. Each has one probe and one skip reason (<see cref="HostFeatures.Missing"/>), so a
/// suite that skips for a missing feature says so in the same words everywhere and the test script can count them.
/// </summary>
public enum Need
{
    /// <summary>A usable /dev/kvm (opens, API version 12, KVM_CAP_IMMEDIATE_EXIT).</summary>
    Kvm,
    /// <summary>Running as root (tap devices, network namespaces, KSM switches).</summary>
    Root,
    /// <summary>qemu-img and qemu-io (Debian qemu-utils): the reference oracle for images.</summary>
    QemuUtils,
    /// <summary>qemu-system-x86_64 (Debian qemu-system-x86): the reference VMM for side-by-side boots.</summary>
    QemuSystem,
    /// <summary>The guest kernel and initramfs that guest/setup.sh prepares.</summary>
    LinuxGuest,
    /// <summary>The unpacked guest packages (guest/fetch.sh): kernel, modules, busybox.</summary>
    GuestPackages,
    /// <summary>A static busybox (Debian busybox-static).</summary>
    Busybox,
    /// <summary>iasl (Debian acpica-tools): the ACPI compiler/disassembler used as an oracle.</summary>
    Iasl,
    /// <summary>gcc and the kernel's UAPI headers, to compile C probes.</summary>
    CCompiler,
    /// <summary>/dev/net/tun and the ip command, for tap devices inside test-made network namespaces.</summary>
    Tap,
    /// <summary>Kernel same-page merging (/sys/kernel/mm/ksm).</summary>
    Ksm,
    /// <summary>
    /// libvirt's QEMU driver driving SharpVmm: root (libvirtd execs the emulator as libvirt-qemu), libvirtd, virtlogd
    /// and virsh installed, and the native binary (libvirt's scrubbed environment has no .NET runtime for the JIT build).
    /// </summary>
    Libvirt,
    /// <summary>A kernel with seccomp filters (/proc/self/status has a Seccomp line), which --sandbox on installs.</summary>
    Seccomp,
    /// <summary>gdb (Debian gdb), to attach to a running VMM and make it call something, as an attacker with code execution would.</summary>
    Gdb,
    /// <summary>
    /// Private mount namespaces (unshare --mount as root): tests that run their own libvirtd instances (migration
    /// between two "hosts" on one machine) give each its own /run/libvirt, /var/lib/libvirt and /etc/libvirt.
    /// </summary>
    MountNamespace,
}
