namespace SharpVmm.Boot.Initramfs;

/// <summary>
/// The guest's /init script, kept in the assembly so `sharpvmm guest build-initramfs` works without the source
/// tree. It is the same text as guest/init in the repository (a test compares them): edit both together.
/// </summary>
public static class GuestInitScript
{
    public const string MarkerInitOk = "SHARPVMM-INIT-OK";
    public const string MarkerExit = "SHARPVMM-EXIT=";
    public const string MarkerModuleFailed = "SHARPVMM-MODULE-FAILED";
    public const string CommandParameter = "sharpvmm.cmd";

    public const string Text = """
#!/bin/sh
# SharpVmm test/demo guest: /init (PID 1) of the initramfs built by `sharpvmm guest build-initramfs`.
#
# 1. mounts proc, sys and devtmpfs and installs the busybox applets;
# 2. loads the kernel modules listed in /etc/sharpvmm/modules (paths below /lib/modules/<version>,
#    already in dependency order) with insmod; a modules.dep is there too, so `modprobe` works later;
# 3. starts busybox acpid when there is an input device (the ACPI power button): a press prints
#    SHARPVMM-POWER-BUTTON on the console and powers off (QMP system_powerdown, virsh shutdown);
# 4. prints  SHARPVMM-INIT-OK kernel=<uname -r> cpus=<nproc>
# 5. runs the command, if there is one, prints  SHARPVMM-EXIT=<status>  and powers off;
#    otherwise starts a shell on the console and powers off when it exits.
#
# The command: `sharpvmm.cmd=<base64 of the UTF-8 shell command>` on the kernel command line (base64 so it
# may hold spaces and quotes; e.g. sharpvmm.cmd=$(printf 'ls /dev' | base64 -w0)), or else the file
# /etc/sharpvmm/cmd in the initramfs. The command runs with `sh -c`, on the console.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s

kver="$(uname -r)"
if [ -f /etc/sharpvmm/modules ]; then
    while read -r module; do
        case "$module" in ''|'#'*) continue ;; esac
        insmod "/lib/modules/$kver/$module" || echo "SHARPVMM-MODULE-FAILED $module"
    done < /etc/sharpvmm/modules
fi

# The power button: the firmware notifies it (ACPI PNP0C0C), button.ko turns that into a KEY_POWER input event,
# evdev gives it a /dev/input/event node, and acpid runs /etc/acpi/PWRF/00000080 for that key.
if ls /dev/input/event* >/dev/null 2>&1; then
    mkdir -p /etc/acpi/PWRF
    printf '#!/bin/sh\necho SHARPVMM-POWER-BUTTON >/dev/console\nsync\npoweroff -f\n' > /etc/acpi/PWRF/00000080
    chmod 755 /etc/acpi/PWRF/00000080
    acpid -l /run/acpid.log -p /run/acpid.pid
fi

echo "SHARPVMM-INIT-OK kernel=$kver cpus=$(nproc)"

cmd_b64=
for word in $(cat /proc/cmdline); do
    case "$word" in sharpvmm.cmd=*) cmd_b64="${word#sharpvmm.cmd=}" ;; esac
done
cmd=
if [ -n "$cmd_b64" ]; then
    if ! cmd="$(echo "$cmd_b64" | base64 -d)"; then
        echo "SHARPVMM-ERROR sharpvmm.cmd is not valid base64"
        cmd="exit 127"
    fi
elif [ -f /etc/sharpvmm/cmd ]; then
    cmd="$(cat /etc/sharpvmm/cmd)"
fi

if [ -n "$cmd" ]; then
    sh -c "$cmd"
    echo "SHARPVMM-EXIT=$?"
else
    setsid cttyhack sh -l
fi
sync
poweroff -f

""";

    /// <summary>
    /// The kernel command-line word that makes /init run <paramref name="command"/> (with sh -c) and power off:
    /// sharpvmm.cmd=&lt;base64 of the UTF-8 command&gt;. Base64 keeps spaces and quotes out of the kernel's parser.
    /// </summary>
    public static string CommandLineWord(string command)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        return CommandParameter + "=" + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(command));
    }
}
