using System.Text.Json.Nodes;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// query-command-line-options: the key=value options the parser takes and their keys. libvirt turns some into
/// capabilities: "sandbox" (listed where the seccomp filter can be installed, with the keys <see cref="QemuSandbox"/>
/// parses) makes it add <c>-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny</c>.
/// </summary>
public static class QemuCommandLineOptions
{
    private static readonly (string Option, (string Name, string Type)[] Parameters)[] Options =
    [
        ("machine", [("type", "string"), ("accel", "string"), ("usb", "boolean"), ("dump-guest-core", "boolean"), ("memory-backend", "string"), ("acpi", "string"), ("graphics", "boolean")]),
        ("accel", [("accel", "string")]),
        ("smp", [("cpus", "number"), ("maxcpus", "number"), ("sockets", "number"), ("dies", "number"), ("clusters", "number"), ("cores", "number"), ("threads", "number")]),
        ("name", [("guest", "string"), ("debug-threads", "boolean")]),
        ("chardev", [("backend", "string"), ("id", "string"), ("fd", "string"), ("path", "string"), ("server", "boolean"), ("wait", "boolean"), ("logfile", "string"), ("logappend", "boolean")]),
        ("mon", [("chardev", "string"), ("id", "string"), ("mode", "string"), ("pretty", "boolean")]),
        ("rtc", [("base", "string"), ("clock", "string")]),
        ("boot", [("order", "string"), ("strict", "boolean"), ("menu", "boolean")]),
        ("overcommit", [("mem-lock", "boolean"), ("cpu-pm", "boolean")]),
        ("msg", [("timestamp", "boolean"), ("guest-name", "boolean")]),
        ("add-fd", [("set", "number"), ("fd", "number"), ("opaque", "string")]),
        ("drive", [("file", "string"), ("format", "string"), ("if", "string"), ("id", "string"), ("readonly", "boolean"), ("media", "string"), ("cache", "string"), ("discard", "string")]),
        ("memory", [("size", "size")]),
    ];

    private static IEnumerable<(string Option, (string Name, string Type)[] Parameters)> All()
    {
        foreach (var o in Options) yield return o;
        if (QemuSandbox.Available) yield return ("sandbox", QemuSandbox.Parameters);
    }

    public static JsonArray Query(string? option)
    {
        var list = new JsonArray();
        bool found = false;
        foreach (var (name, parameters) in All())
        {
            if (option is not null && option != name) continue;
            found = true;
            var ps = new JsonArray();
            foreach (var (p, type) in parameters) ps.Add((JsonNode)new JsonObject { ["name"] = p, ["type"] = type });
            list.Add((JsonNode)new JsonObject { ["parameters"] = ps, ["option"] = name });
        }
        if (option is not null && !found)
            throw SharpVmm.Monitor.Protocol.QmpException.Generic($"Invalid parameter 'option'");
        return list;
    }
}
