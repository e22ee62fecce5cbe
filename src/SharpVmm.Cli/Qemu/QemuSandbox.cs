using SharpVmm.Machine.Sandbox;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// <c>-sandbox on|off[,obsolete=..][,elevateprivileges=..][,spawn=..][,resourcecontrol=..]</c>, which libvirt passes
/// as <c>on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny</c> once query-command-line-options
/// lists "sandbox" (<see cref="Parameters"/>, taken from <see cref="SandboxPolicy.QemuGroups"/> as the parser's keys
/// are). QEMU's filter is a deny-list each key extends; ours (<see cref="SandboxPolicy"/>) is an allow-list, so every
/// group is refused by it
/// whatever the key says: "deny" (and elevateprivileges=children, deny with no_new_privs) is what it does, and "allow",
/// which would need the filter to let those calls through, is refused in one line rather than silently not honoured.
/// </summary>
public static class QemuSandbox
{
    /// <summary>What query-command-line-options says the option takes: exactly the keys <see cref="Parse"/> accepts.</summary>
    public static (string Name, string Type)[] Parameters
    {
        get
        {
            var groups = SandboxPolicy.QemuGroups;
            var list = new (string, string)[groups.Length + 1];
            list[0] = ("enable", "boolean");
            for (var i = 0; i < groups.Length; i++) list[i + 1] = (groups[i].Key, "string");
            return list;
        }
    }

    /// <summary>Whether this host can install the filter: only then is the option listed for libvirt.</summary>
    public static bool Available => ProcessSandbox.IsSupported;

    /// <summary>Parses the option's text: true when the filter is to be installed.</summary>
    public static bool Parse(string text)
    {
        var o = QemuOptions.Parse("-sandbox", text, "enable");
        var on = o.GetBool("enable") ?? false;
        foreach (var (key, _) in SandboxPolicy.QemuGroups)
        {
            // QEMU's values; with the sandbox off nothing is filtered, so there is nothing to honour either way.
            string[] values = key == "elevateprivileges" ? ["allow", "deny", "children"] : ["allow", "deny"];
            o.Allow(key, values);
            var value = o.Get(key);
            // "children" is deny plus no_new_privs for children, which the filter always sets.
            if (on && value is not null and not ("deny" or "children"))
                throw new QemuArgException("-sandbox", $"{key}={value} cannot be honoured: SharpVmm's filter allows only the calls a VMM needs and never lets these through (use {key}=deny, or -sandbox off)");
        }
        o.RejectUnused("-sandbox");
        if (on && !Available)
            throw new QemuArgException("-sandbox", "on is not available here: the seccomp filter needs Linux on x86-64 with seccomp filters (use -sandbox off)");
        return on;
    }
}
