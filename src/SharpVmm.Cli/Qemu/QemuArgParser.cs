using System.Globalization;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// QEMU's command-line grammar, the part libvirt's QEMU driver generates (and people type). Every option is either
/// mapped onto SharpVmm's machine or refused with a <see cref="QemuArgException"/> that names it: nothing is
/// silently ignored, except the options that only tune QEMU's own defaults (-no-user-config, -display none).
/// </summary>
public static class QemuArgParser
{
    public static QemuInvocation Parse(IReadOnlyList<string> args)
    {
        var q = new QemuInvocation();
        for (int i = 0; i < args.Count; i++)
        {
            string raw = args[i];
            if (!raw.StartsWith('-'))
                throw new QemuArgException(raw, "SharpVmm takes no disk image as a bare argument: use -blockdev or -drive");
            // QEMU accepts -opt and --opt alike.
            string opt = raw.StartsWith("--", StringComparison.Ordinal) ? raw[1..] : raw;
            string Value()
            {
                if (i + 1 >= args.Count) throw new QemuArgException(opt, "needs an argument");
                return args[++i];
            }
            switch (opt)
            {
                case "-version": q.Help ??= "version"; break;
                case "-h" or "-help": q.Help ??= "help"; break;
                case "-S": q.Paused = true; break;
                case "-no-user-config": break; // SharpVmm reads no system-wide QEMU config files anyway
                case "-nodefaults": q.NoDefaults = true; break;
                case "-nographic": q.NoGraphic = true; break;
                case "-no-shutdown": q.NoShutdown = true; break;
                case "-no-reboot": q.NoReboot = true; break;
                case "-no-acpi": q.Acpi = false; break;
                case "-daemonize": q.Daemonize = true; break;
                case "-enable-kvm": q.Accelerators.Add(AcceleratorKind.Kvm); break;
                case "-name": ParseName(q, Value()); break;
                case "-uuid": ParseUuid(q, Value()); break;
                case "-machine" or "-M": ParseMachine(q, Value()); break;
                case "-accel": ParseAccel(q, Value()); break;
                case "-cpu": ParseCpu(q, Value()); break;
                case "-m": ParseMemory(q, Value()); break;
                case "-smp": ParseSmp(q, Value()); break;
                case "-object": ParseObject(q, Value()); break;
                case "-overcommit": ParseOvercommit(Value()); break;
                case "-display": ParseDisplay(Value()); break;
                case "-chardev": ParseChardev(q, Value()); break;
                case "-mon": ParseMon(q, Value()); break;
                case "-qmp": q.Monitors.Add(new QemuMonitor(null, ParseQmpAddress(Value()))); break;
                case "-serial": ParseSerial(q, Value()); break;
                case "-rtc": ParseRtc(Value()); break;
                case "-boot": ParseBoot(Value()); break;
                case "-kernel": q.Kernel = Value(); break;
                case "-initrd": q.Initrd = Value(); break;
                case "-append": q.Append = Value(); break;
                case "-add-fd": ParseAddFd(q, Value()); break;
                case "-device": QemuDeviceParser.Parse(q, Value()); break;
                case "-blockdev": QemuBlockParser.ParseBlockdev(q, Value()); break;
                case "-drive": QemuBlockParser.ParseDrive(q, Value()); break;
                case "-netdev": QemuDeviceParser.ParseNetdev(q, Value()); break;
                case "-audiodev": ParseAudiodev(Value()); break;
                case "-sandbox": q.Sandbox = QemuSandbox.Parse(Value()); break;
                case "-msg": ParseMsg(q, Value()); break;
                case "-pidfile": q.PidFile = Value(); break;
                case "-incoming": q.Incoming = ParseIncoming(Value()); break;
                default:
                    throw new QemuArgException(opt, "is not supported by SharpVmm");
            }
        }
        return q;
    }

    private static void ParseName(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-name", text, "guest");
        q.Name = o.Get("guest");
        // debug-threads names host threads after their role: SharpVmm names its vCPU threads anyway.
        o.Accept("debug-threads");
        o.RejectUnused("-name");
    }

    private static void ParseUuid(QemuInvocation q, string text)
    {
        if (!Guid.TryParseExact(text, "D", out _)) throw new QemuArgException("-uuid", $"'{text}' is not a UUID");
        q.Uuid = text;
    }

    private static void ParseMachine(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-machine", text, "type");
        string? type = o.Get("type");
        if (type == "help")
        {
            q.Help ??= "machine";
            return;
        }
        if (type is not null)
        {
            q.Machine = type switch
            {
                "microvm" or "none" => type,
                _ when type == "pc" || type == "q35" || type.StartsWith("pc-", StringComparison.Ordinal) || type == "isapc"
                    => throw new QemuArgException("-machine", $"type '{type}' (a PC with PCI and firmware) is not supported by SharpVmm: use machine type 'microvm'"),
                _ => throw new QemuArgException("-machine", $"type '{type}' is not supported by SharpVmm: use 'microvm' (or 'none')"),
            };
        }
        if (o.Get("accel") is { } accel)
            foreach (string a in accel.Split(':')) q.Accelerators.Add(Accelerator("-machine", a));
        if (o.GetBool("acpi") is { } acpi) q.Acpi = acpi;
        // Off is what SharpVmm's machine is: no USB controller; guest memory is never in the VMM's core dumps' way.
        o.Allow("usb", "off");
        o.Allow("dump-guest-core", "off", "on");
        o.Allow("graphics", "off");
        q.MemoryBackend = o.Get("memory-backend");
        o.RejectUnused("-machine");
    }

    private static AcceleratorKind Accelerator(string option, string name) => name switch
    {
        "kvm" => AcceleratorKind.Kvm,
        "tcg" => AcceleratorKind.Emu, // QEMU's software CPU; SharpVmm's is its emulator
        _ => throw new QemuArgException(option, $"accelerator '{name}' is not supported by SharpVmm (use kvm or tcg)"),
    };

    private static void ParseAccel(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-accel", text, "accel");
        string name = o.Require("accel", "an accelerator");
        if (name == "help")
        {
            q.Help ??= "accel";
            return;
        }
        q.Accelerators.Add(Accelerator("-accel", name));
        o.RejectUnused("-accel");
    }

    private static void ParseCpu(QemuInvocation q, string text)
    {
        var parts = OptionList.SplitItems(text);
        if (parts[0] == "help")
        {
            q.Help ??= "cpu";
            return;
        }
        if (!QemuCpuModels.IsKnown(parts[0]))
            throw new QemuArgException("-cpu", $"model '{parts[0]}' is not supported by SharpVmm (supported: {string.Join(", ", QemuCpuModels.Names)})");
        if (parts.Count > 1)
            throw new QemuArgException("-cpu", $"feature flags ('{string.Join(',', parts.GetRange(1, parts.Count - 1))}') are not supported: SharpVmm's CPU model is fixed");
        q.Cpu = parts[0];
    }

    private static void ParseMemory(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-m", text, "size");
        string size = o.Require("size", "memory");
        q.MemoryBytes = Size("-m", size, defaultUnit: 1UL << 20);
        if (o.Get("maxmem") is not null || o.Get("slots") is not null)
            throw new QemuArgException("-m", "memory hotplug (slots=, maxmem=) is not supported by SharpVmm");
        o.RejectUnused("-m");
    }

    /// <summary>A QEMU size: a number with an optional k/M/G/T suffix (powers of 1024); bare numbers are in <paramref name="defaultUnit"/>.</summary>
    public static ulong Size(string option, string text, ulong defaultUnit)
    {
        ulong unit = defaultUnit;
        string digits = text;
        if (text.Length > 0 && char.IsLetter(text[^1]))
        {
            unit = char.ToUpperInvariant(text[^1]) switch
            {
                'B' => 1,
                'K' => 1UL << 10,
                'M' => 1UL << 20,
                'G' => 1UL << 30,
                'T' => 1UL << 40,
                _ => throw new QemuArgException(option, $"'{text}' is not a size"),
            };
            digits = text[..^1];
        }
        if (!ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n == 0 || n > ulong.MaxValue / unit)
            throw new QemuArgException(option, $"'{text}' is not a size");
        return n * unit;
    }

    private static int Int(string option, string key, string text)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new QemuArgException(option, $"{key}='{text}' is not a number");
        return n;
    }

    private static void ParseSmp(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-smp", text, "cpus");
        int cpus = Int("-smp", "cpus", o.Require("cpus", "-smp"));
        if (cpus < 1 || cpus > VmConfig.MaxVcpus) throw new QemuArgException("-smp", $"{cpus} vCPUs is out of range: use 1 to {VmConfig.MaxVcpus}");
        if (o.Get("maxcpus") is { } max && Int("-smp", "maxcpus", max) != cpus)
            throw new QemuArgException("-smp", "CPU hotplug (maxcpus above cpus) is not supported by SharpVmm");
        // The topology only has to multiply out: SharpVmm presents every vCPU as its own core of one socket.
        int product = 1;
        foreach (string key in new[] { "sockets", "dies", "clusters", "cores", "threads" })
            if (o.Get(key) is { } v) product *= Int("-smp", key, v);
        if (product != cpus && (o.Has("sockets") || o.Has("cores") || o.Has("threads")))
            throw new QemuArgException("-smp", $"the topology gives {product} vCPUs, not {cpus}");
        o.RejectUnused("-smp");
        q.Cpus = cpus;
    }

    private static void ParseObject(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-object", text, "qom-type");
        string type = o.Require("qom-type", "an object");
        string id = o.Require("id", type);
        switch (type)
        {
            case "secret":
                // libvirt's master key: kept for what may decrypt with it; SharpVmm has no encrypted disks, so it is only read.
                string? file = o.Get("file");
                string? data = o.Get("data");
                o.Allow("format", "raw", "base64");
                if ((file is null) == (data is null)) throw new QemuArgException("-object", $"secret '{id}' needs file= or data=");
                q.Secrets[id] = file ?? data!;
                break;
            case "memory-backend-ram":
                q.MemoryBackends[id] = Size("-object", o.Require("size", "memory-backend-ram"), 1);
                o.Allow("share", "off");
                o.Allow("prealloc", "off");
                break;
            default:
                throw new QemuArgException("-object", $"type '{type}' is not supported by SharpVmm (supported: secret, memory-backend-ram)");
        }
        o.RejectUnused($"-object {type}");
    }

    private static void ParseOvercommit(string text)
    {
        var o = QemuOptions.Parse("-overcommit", text);
        // SharpVmm neither locks guest memory nor passes CPU power management through: only "off" is true of it.
        o.Allow("mem-lock", "off");
        o.Allow("cpu-pm", "off");
        o.RejectUnused("-overcommit");
    }

    private static void ParseDisplay(string text)
    {
        var o = QemuOptions.Parse("-display", text, "type");
        o.Allow("type", "none");
        o.RejectUnused("-display");
    }

    private static void ParseChardev(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-chardev", text, "backend");
        string backend = o.Require("backend", "a chardev");
        string id = o.Require("id", "a chardev");
        if (q.Chardevs.ContainsKey(id)) throw new QemuArgException("-chardev", $"id '{id}' is used twice");
        string? logfile = o.Get("logfile");
        bool logappend = o.GetBool("logappend") ?? false;
        QemuChardev dev;
        switch (backend)
        {
            case "socket":
                // Only a listening UNIX socket: the monitor (libvirt passes it bound and listening as fd=N) or a console.
                if (o.GetBool("server") != true) throw new QemuArgException("-chardev", $"socket '{id}': SharpVmm only listens (server=on)");
                if (o.GetBool("wait") is true) throw new QemuArgException("-chardev", $"socket '{id}': wait=on (block until a client connects) is not supported: use wait=off");
                string? fd = o.Get("fd"), path = o.Get("path");
                if ((fd is null) == (path is null)) throw new QemuArgException("-chardev", $"socket '{id}' needs fd=N or path=PATH");
                dev = new QemuChardev(id, "socket", path, fd is null ? null : Int("-chardev", "fd", fd), logfile, logappend);
                break;
            case "pty" or "stdio" or "null":
                if (backend == "stdio") o.Allow("signal", "on", "off");
                dev = new QemuChardev(id, backend, null, null, logfile, logappend);
                break;
            case "file":
                dev = new QemuChardev(id, "file", o.Require("path", "a file chardev"), null, logfile, logappend);
                o.Allow("append", "off");
                break;
            default:
                throw new QemuArgException("-chardev", $"backend '{backend}' is not supported by SharpVmm (supported: socket, pty, file, stdio, null)");
        }
        o.RejectUnused($"-chardev {backend}");
        q.Chardevs[id] = dev;
    }

    private static void ParseMon(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-mon", text, "chardev");
        string chardev = o.Require("chardev", "a monitor");
        o.Accept("id");
        o.Allow("mode", "control");
        o.Allow("pretty", "off");
        o.RejectUnused("-mon");
        q.Monitors.Add(new QemuMonitor(chardev, null));
    }

    /// <summary>-qmp unix:PATH,server=on,wait=off (or server,nowait) or tcp:HOST:PORT,server=on,wait=off.</summary>
    private static string ParseQmpAddress(string text)
    {
        var list = OptionList.WithHead(text);
        string address = list.Head;
        foreach (var item in list.Items)
        {
            if (item.Text is "server" or "server=on" or "nowait" or "wait=off") continue;
            throw new QemuArgException("-qmp", $"'{item.Text}' is not supported: SharpVmm's monitor listens (server=on,wait=off)");
        }
        if (!address.StartsWith("unix:", StringComparison.Ordinal) && !address.StartsWith("tcp:", StringComparison.Ordinal))
            throw new QemuArgException("-qmp", $"'{address}' is not supported: use unix:PATH or tcp:127.0.0.1:PORT");
        return address;
    }

    /// <summary>-serial stdio|null|file:PATH|unix:PATH,server=on,wait=off: COM1 on a chardev of its own.</summary>
    private static void ParseSerial(QemuInvocation q, string text)
    {
        if (q.SerialChardev is not null) throw new QemuArgException("-serial", "SharpVmm has one serial port (COM1), already given");
        string id = "serial0-auto";
        q.Chardevs[id] = text switch
        {
            "stdio" => new QemuChardev(id, "stdio"),
            "null" or "none" => new QemuChardev(id, "null"),
            "pty" => new QemuChardev(id, "pty"),
            _ when text.StartsWith("file:", StringComparison.Ordinal) => new QemuChardev(id, "file", text[5..]),
            _ => throw new QemuArgException("-serial", $"'{text}' is not supported (use stdio, null, pty or file:PATH)"),
        };
        q.SerialChardev = id;
    }

    private static void ParseRtc(string text)
    {
        var o = QemuOptions.Parse("-rtc", text);
        // The CMOS clock is set from the host's UTC time, and the guest's time is not slewed after a pause.
        o.Allow("base", "utc");
        o.Allow("clock", "host");
        o.RejectUnused("-rtc");
    }

    private static void ParseBoot(string text)
    {
        var o = QemuOptions.Parse("-boot", text, "order");
        // SharpVmm boots -kernel directly, without firmware: there is no boot order to follow, and nothing else to try.
        o.Accept("strict", "order", "menu");
        o.RejectUnused("-boot");
    }

    private static void ParseAddFd(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-add-fd", text);
        int set = Int("-add-fd", "set", o.Require("set", "-add-fd"));
        int fd = Int("-add-fd", "fd", o.Require("fd", "-add-fd"));
        if (fd < 3) throw new QemuArgException("-add-fd", $"fd={fd} is stdin, stdout or stderr");
        o.Accept("opaque");
        o.RejectUnused("-add-fd");
        if (!q.FdSets.TryGetValue(set, out var list)) q.FdSets[set] = list = [];
        list.Add(fd);
    }

    private static void ParseAudiodev(string text)
    {
        var o = QemuOptions.Parse("-audiodev", text, "driver");
        o.Accept("id");
        // SharpVmm has no sound card: an audio backend that plays nothing is all a guest could use.
        o.Allow("driver", "none");
        o.RejectUnused("-audiodev");
    }

    private static void ParseMsg(QemuInvocation q, string text)
    {
        var o = QemuOptions.Parse("-msg", text);
        q.MessageTimestamps = o.GetBool("timestamp") ?? false;
        o.Allow("guest-name", "off");
        o.RejectUnused("-msg");
    }

    private static string ParseIncoming(string text)
    {
        if (text == "defer" || text.StartsWith("tcp:", StringComparison.Ordinal) || text.StartsWith("fd:", StringComparison.Ordinal)) return text;
        throw new QemuArgException("-incoming", $"'{text}' is not supported: use defer, tcp:HOST:PORT or fd:N");
    }
}
