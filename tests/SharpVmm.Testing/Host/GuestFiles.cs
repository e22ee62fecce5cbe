namespace SharpVmm.Testing;

/// <summary>Where the tests find the guest that guest/setup.sh prepares ($SHARPVMM_GUEST_DIR, else ~/.cache/sharpvmm/guest).</summary>
public static class GuestFiles
{
    public static string Dir =>
        Environment.GetEnvironmentVariable("SHARPVMM_GUEST_DIR") is { Length: > 0 } d
            ? d
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharpvmm", "guest");

    public static string Kernel => Path.Combine(Dir, "vmlinuz");
    public static string Initrd => Path.Combine(Dir, "initrd.gz");

    /// <summary>The kernel's path when it has been fetched, else null.</summary>
    public static string? KernelIfPresent => File.Exists(Kernel) ? Kernel : null;

    /// <summary>A static busybox: the fetched one, else Debian's busybox-static, else null.</summary>
    public static string? Busybox
    {
        get
        {
            foreach (var p in new[] { Path.Combine(Dir, "busybox"), "/bin/busybox" })
                if (File.Exists(p)) return p;
            return null;
        }
    }

    /// <summary>Whether guest/fetch.sh left a complete set of unpacked packages.</summary>
    public static bool PackagesPresent
    {
        get
        {
            foreach (var f in new[] { "vmlinuz", "busybox", "kernel-version", "packages" })
                if (!File.Exists(Path.Combine(Dir, f))) return false;
            return Directory.Exists(Path.Combine(Dir, "modules"));
        }
    }
}
