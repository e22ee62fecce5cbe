using SharpVmm.Kvm;

namespace SharpVmm.Testing;

/// <summary>
/// Probes each <see cref="Need"/> once per test process. A missing feature's reason always starts with
/// "needs &lt;feature&gt;:", the prefix scripts/test.sh groups its skip counts by.
/// </summary>
public static class HostFeatures
{
    private static readonly Lazy<string?>[] s_missing = BuildProbes();

    /// <summary>Why <paramref name="need"/> is missing here, or null when the host has it.</summary>
    public static string? Missing(Need need) => s_missing[(int)need].Value;

    /// <summary>The reason for the first of <paramref name="needs"/> the host lacks, or null when it has them all.</summary>
    public static string? FirstMissing(ReadOnlySpan<Need> needs)
    {
        foreach (var n in needs)
            if (Missing(n) is { } why) return why;
        return null;
    }

    public static bool Has(Need need) => Missing(need) is null;

    private static Lazy<string?>[] BuildProbes()
    {
        var probes = new Lazy<string?>[Enum.GetValues<Need>().Length];
        foreach (var n in Enum.GetValues<Need>())
        {
            Need need = n;
            probes[(int)need] = new Lazy<string?>(() => Probe(need) is { } detail ? $"needs {Label(need)}: {detail}" : null);
        }
        return probes;
    }

    private static string Label(Need need) => need switch
    {
        Need.Kvm => "KVM",
        Need.Root => "root",
        Need.QemuUtils => "qemu-img",
        Need.QemuSystem => "qemu-system-x86_64",
        Need.LinuxGuest => "the guest kernel",
        Need.GuestPackages => "the guest packages",
        Need.Busybox => "busybox",
        Need.Iasl => "iasl",
        Need.CCompiler => "gcc",
        Need.Tap => "tap devices",
        Need.Ksm => "KSM",
        Need.Libvirt => "libvirt",
        Need.Seccomp => "seccomp",
        Need.Gdb => "gdb",
        Need.MountNamespace => "private mount namespaces",
        _ => need.ToString(),
    };

    private static string? Probe(Need need) => need switch
    {
        Need.Kvm => ProbeKvm(),
        Need.Root => Environment.UserName == "root" ? null : "not running as root",
        Need.QemuUtils => HostTools.Exists("qemu-img") && HostTools.Exists("qemu-io")
            ? null : "qemu-img/qemu-io not installed (Debian package qemu-utils)",
        Need.QemuSystem => HostTools.Exists("qemu-system-x86_64")
            ? null : "qemu-system-x86_64 not installed (Debian package qemu-system-x86)",
        Need.LinuxGuest => File.Exists(GuestFiles.Kernel) && File.Exists(GuestFiles.Initrd)
            ? null : $"no vmlinuz/initrd.gz in {GuestFiles.Dir}: run guest/setup.sh (or set SHARPVMM_GUEST_DIR)",
        Need.GuestPackages => GuestFiles.PackagesPresent
            ? null : $"no fetched guest packages in {GuestFiles.Dir}: run guest/fetch.sh (or set SHARPVMM_GUEST_DIR)",
        Need.Busybox => GuestFiles.Busybox is not null
            ? null : "no static busybox (Debian package busybox-static, or $SHARPVMM_GUEST_DIR/busybox)",
        Need.Iasl => HostTools.Exists("iasl") ? null : "iasl not installed (Debian package acpica-tools)",
        Need.CCompiler => !HostTools.Exists("gcc") ? "gcc not installed (Debian package gcc)"
            : !File.Exists("/usr/include/linux/kvm.h") ? "/usr/include/linux/kvm.h missing (Debian package linux-libc-dev)" : null,
        Need.Tap => !File.Exists("/dev/net/tun") ? "no /dev/net/tun on this host"
            : !HostTools.Exists("ip") ? "no 'ip' command (Debian package iproute2)"
            : Environment.UserName != "root" ? "creating tap devices and namespaces needs root (CAP_NET_ADMIN)" : null,
        Need.Ksm => !Directory.Exists("/sys/kernel/mm/ksm") ? "this kernel has no KSM (/sys/kernel/mm/ksm)"
            : Environment.UserName != "root" ? "switching KSM on needs root" : null,
        Need.Libvirt => Environment.UserName != "root" ? "libvirtd runs the emulator as libvirt-qemu and needs root"
            : !File.Exists("/usr/sbin/libvirtd") || !File.Exists("/usr/sbin/virtlogd") || !File.Exists("/usr/bin/virsh")
                ? "libvirt is not installed (scripts/setup.sh installs libvirt-daemon-system and libvirt-clients)"
            : RepoFiles.NativeBinary is null
                ? "no native sharpvmm binary (scripts/publish.sh builds artifacts/bin/sharpvmm, or set SHARPVMM_BIN)" : null,
        Need.Seccomp => File.ReadAllText("/proc/self/status").Contains("\nSeccomp:", StringComparison.Ordinal)
            ? null : "this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)",
        Need.Gdb => HostTools.Exists("gdb") ? null : "gdb not installed (Debian package gdb)",
        Need.MountNamespace => ProbeMountNamespace(),
        _ => $"no probe for {need}",
    };

    private static string? ProbeMountNamespace()
    {
        if (Environment.UserName != "root") return "unshare --mount needs root (CAP_SYS_ADMIN)";
        if (HostTools.Find("unshare") is not { } unshare) return "no 'unshare' command (Debian package util-linux)";
        var psi = new System.Diagnostics.ProcessStartInfo(unshare) { RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "--mount", "--propagation", "private", "true" }) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string error = p.StandardError.ReadToEnd().Trim();
        p.WaitForExit();
        return p.ExitCode == 0 ? null : $"unshare --mount failed here (a container without CAP_SYS_ADMIN?): {error}";
    }

    private static string? ProbeKvm()
    {
        try
        {
            using var kvm = KvmSystem.Open();
            return kvm.HasCapability(SharpVmm.Kvm.Interop.KvmCap.ImmediateExit) ? null : "this KVM lacks KVM_CAP_IMMEDIATE_EXIT";
        }
        catch (KvmException e)
        {
            return e.Message;
        }
    }
}
