namespace SharpVmm.Boot.Initramfs;

/// <summary>
/// Builds the test/demo guest's initramfs from a guest dir made by guest/fetch.sh (busybox, modules/,
/// kernel-version): busybox with /bin/sh, the /init script, /dev/console and /dev/null, the requested kernel
/// modules with their dependencies, a modules.dep, and /etc/sharpvmm/modules listing them in load order.
/// </summary>
public static class GuestInitramfs
{
    /// <summary>
    /// The virtio drivers the SharpVmm devices need (virtio_mmio finds the devices through ACPI), the ACPI power
    /// button's driver and evdev (acpid reads the button's key presses from /dev/input), and pvpanic (the guest
    /// reports a kernel panic to the VMM through QEMU0001's port).
    /// </summary>
    public static IReadOnlyList<string> DefaultModules { get; } =
    [
        "virtio_mmio", "virtio_blk", "virtio_net", "virtio_console", "virtio-rng", "virtio_balloon",
        "vmw_vsock_virtio_transport", "button", "evdev", "pvpanic-mmio",
    ];

    /// <summary>The default guest dir: $SHARPVMM_GUEST_DIR, else ~/.cache/sharpvmm/guest (as guest/fetch.sh).</summary>
    public static string DefaultGuestDir
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("SHARPVMM_GUEST_DIR");
            if (!string.IsNullOrEmpty(env))
                return env;
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharpvmm", "guest");
        }
    }

    /// <summary>Fills a builder; add more files to it before calling Build if the guest needs them.</summary>
    /// <param name="guestDir">The dir guest/fetch.sh filled.</param>
    /// <param name="modules">Module names to load at boot (dependencies are added); null for <see cref="DefaultModules"/>.</param>
    /// <param name="initScript">The /init text; null for <see cref="GuestInitScript.Text"/>.</param>
    /// <param name="command">When set, written to /etc/sharpvmm/cmd: /init runs it instead of a shell.</param>
    public static InitramfsBuilder Create(string guestDir, IEnumerable<string>? modules = null, string? initScript = null, string? command = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(guestDir);
        string busybox = Path.Combine(guestDir, "busybox");
        string modulesDir = Path.Combine(guestDir, "modules");
        string versionFile = Path.Combine(guestDir, "kernel-version");
        foreach (var required in new[] { busybox, versionFile })
        {
            if (!File.Exists(required))
                throw new InitramfsException($"'{required}' is missing: run guest/fetch.sh (or set SHARPVMM_GUEST_DIR to a fetched guest dir)");
        }
        string version = File.ReadAllText(versionFile).Trim();
        if (version.Length == 0 || version.Contains('/', StringComparison.Ordinal) || version.StartsWith('.'))
            throw new InitramfsException($"'{versionFile}' does not hold a kernel version; run guest/fetch.sh again");

        var resolved = KernelModules.Resolve(modulesDir, modules ?? DefaultModules);

        var b = new InitramfsBuilder();
        foreach (var dir in new[] { "bin", "sbin", "usr/bin", "usr/sbin", "dev", "etc/sharpvmm", "proc", "sys", "tmp", "run", "root", "mnt" })
            b.AddDirectory(dir);
        b.AddDirectory("tmp", (UnixFileMode)0x3FF); // 1777
        b.AddDirectory("root", (UnixFileMode)0x1C0); // 0700
        // The kernel opens /dev/console for init's stdio before anything is mounted.
        b.AddDevice("dev/console", CpioEntryType.CharacterDevice, 5, 1, (UnixFileMode)0x180);
        b.AddDevice("dev/null", CpioEntryType.CharacterDevice, 1, 3, (UnixFileMode)0x1B6);
        b.AddHostFile("bin/busybox", busybox, InitramfsBuilder.ExecutableMode);
        b.AddSymlink("bin/sh", "busybox");
        b.AddFile("init", initScript ?? GuestInitScript.Text, InitramfsBuilder.ExecutableMode);

        string moduleRoot = "lib/modules/" + version;
        b.AddDirectory(moduleRoot);
        var loadList = new System.Text.StringBuilder();
        foreach (var m in resolved)
        {
            b.AddHostFile(moduleRoot + "/" + m.RelativePath, m.FullPath, InitramfsBuilder.FileMode);
            loadList.Append(m.RelativePath).Append('\n');
        }
        b.AddFile(moduleRoot + "/modules.dep", KernelModules.ModulesDep(resolved));
        b.AddFile("etc/sharpvmm/modules", loadList.ToString());
        if (command is not null)
            b.AddFile("etc/sharpvmm/cmd", command);
        return b;
    }
}
