using System.Globalization;
using System.Text;
using SharpVmm.Monitor.Commands;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Hmp;

/// <summary>
/// The human monitor behind QMP's human-monitor-command: a handful of QEMU's HMP commands with QEMU's text
/// (CRLF line ends, "unknown command: '...'" for the rest, "Error: ..." when a command fails).
/// </summary>
public sealed class HumanMonitor(VmMonitor vm, QmpVersion version)
{
    private static readonly (string Name, string Args, string Help)[] Commands =
    [
        ("balloon", "target", "request VM to change its memory allocation (in MB)"),
        ("cont|c", "", "resume emulation"),
        ("help|?", "[cmd]", "show the help"),
        ("info", "[subcommand]", "show various information about the system state"),
        ("quit|q", "", "quit the emulator"),
        ("stop|s", "", "stop emulation"),
        ("system_powerdown", "", "send system power down event"),
        ("system_reset", "", "reset the system"),
    ];

    private static readonly (string Name, string Args, string Help)[] InfoCommands =
    [
        ("balloon", "", "show balloon information"),
        ("block", "[-v] [device]", "show info of one block device or all block devices (-v: show details)"),
        ("jit", "", "show dynamic compiler info"),
        ("ksm", "", "show the VM's host memory: resident, shared through KSM, ballooned (SharpVmm)"),
        ("memory_size_summary|memory", "", "show memory size information"),
        ("registers", "[-a|vcpu]", "show the cpu registers (-a: show register info for all cpus; vcpu: specific vCPU to query; show the current CPU's registers if no argument is specified)"),
        ("status", "", "show the current VM status (running|paused)"),
        ("version", "", "show the version of QEMU"),
    ];

    public string Execute(QmpCall call, string commandLine, long? cpuIndex)
    {
        if (cpuIndex is { } c && (c < 0 || c >= vm.Vm.VcpuCount))
            throw QmpException.Generic("Parameter 'cpu-index' expects a CPU number");
        string[] words = commandLine.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var output = new StringBuilder();
        if (words.Length > 0)
        {
            try
            {
                Run(call, words, (int)(cpuIndex ?? 0), output);
            }
            catch (QmpException ex)
            {
                output.Append("Error: ").Append(ex.Description).Append('\n');
            }
        }
        return output.Replace("\n", "\r\n").ToString();
    }

    private static (string Name, string Args, string Help)? Find((string Name, string Args, string Help)[] table, string word)
    {
        foreach (var c in table)
            if (Array.IndexOf(c.Name.Split('|'), word) >= 0) return c;
        return null;
    }

    private void Run(QmpCall call, string[] words, int cpu, StringBuilder output)
    {
        if (Find(Commands, words[0]) is not { } command)
        {
            output.Append($"unknown command: '{words[0]}'\n");
            return;
        }
        switch (command.Name)
        {
            case "help|?":
                HelpFor(words[1..], output);
                return;
            case "info":
                Info(words, cpu, output);
                return;
            case "balloon":
                if (words.Length != 2 || !long.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out long mb) || mb <= 0 || mb >= long.MaxValue >> 20)
                    throw QmpException.Generic("balloon: give the target in MB, e.g. balloon 128");
                MemoryCommands.SetTarget(vm, mb << 20);
                return;
        }
        // The rest take no arguments.
        if (words.Length > 1)
        {
            Extraneous(output, command.Name, words[0]);
            return;
        }
        switch (command.Name)
        {
            case "stop|s": vm.Stop(); break;
            case "cont|c": vm.Cont(); break;
            case "system_reset": vm.Reset(); break;
            case "system_powerdown": vm.Powerdown(); break;
            case "quit|q": vm.Quit(call); break;
        }
    }

    /// <summary>QEMU's complaint about arguments a command does not take.</summary>
    private static void Extraneous(StringBuilder output, string name, string typed)
        => output.Append($"{name}: extraneous characters at the end of line\nTry \"help {typed}\" for more information\n");

    private static void Unsupported(StringBuilder output, string name, string option, string typed)
        => output.Append($"{name}: unsupported option {option}\nTry \"help {typed}\" for more information\n");

    private static void HelpFor(string[] topic, StringBuilder output)
    {
        if (topic.Length == 0)
        {
            Help(output, "", Commands);
            return;
        }
        if (topic[0] == "info")
        {
            if (topic.Length == 1) Help(output, "info ", InfoCommands);
            else if (Find(InfoCommands, topic[1]) is { } sub) Help(output, "info ", [sub]);
            else output.Append($"unknown command: 'info {topic[1]}'\n");
            return;
        }
        if (Find(Commands, topic[0]) is { } c) Help(output, "", [c]);
        else output.Append($"unknown command: '{topic[0]}'\n");
    }

    private void Info(string[] words, int cpu, StringBuilder output)
    {
        if (words.Length == 1)
        {
            Help(output, "info ", InfoCommands);
            return;
        }
        if (Find(InfoCommands, words[1]) is not { } sub)
        {
            output.Append($"unknown command: 'info {words[1]}'\n");
            return;
        }
        string[] args = words[2..];
        string typed = $"info {words[1]}";
        switch (sub.Name)
        {
            case "registers":
                Registers(args, cpu, typed, output);
                return;
            case "block":
                Block(args, typed, output);
                return;
        }
        if (args.Length > 0)
        {
            Extraneous(output, sub.Name, typed);
            return;
        }
        switch (sub.Name)
        {
            case "status":
                output.Append("VM status: ").Append(vm.StatusName switch
                {
                    "running" => "running",
                    "paused" => "paused",
                    string other => $"paused ({other})",
                }).Append('\n');
                break;
            case "balloon" or "ksm" or "memory_size_summary|memory":
                output.Append(MemoryCommands.HumanInfo(vm, words[1]));
                break;
            case "jit":
                output.Append(JitCommands.HumanInfo(vm));
                break;
            case "version":
                output.Append($"{version.Major}.{version.Minor}.{version.Micro} ({version.Package})\n");
                break;
        }
    }

    /// <summary>
    /// <c>info registers [-a|vcpu]</c> as QEMU 7.2 answers it: the current CPU (cpu-index, default 0), the one named, or
    /// all with -a; a CPU that does not exist is "CPU#N not available", not an error.
    /// </summary>
    private void Registers(string[] args, int cpu, string typed, StringBuilder output)
    {
        if (FlagAndValue(args, "-a", "registers", typed, output) is not var (all, value)) return;
        long? vcpu = null;
        if (value is not null)
        {
            if (!TryParseNumber(value, out long n, out char bad))
            {
                output.Append($"invalid char '{bad}' in expression\nTry \"help {typed}\" for more information\n");
                return;
            }
            vcpu = n;
        }
        int first = cpu, last = cpu;
        if (all) (first, last) = (0, vm.Vm.VcpuCount - 1);
        else if (vcpu is { } v)
        {
            if (v < 0 || v >= vm.Vm.VcpuCount)
            {
                output.Append($"CPU#{v} not available\n");
                return;
            }
            first = last = (int)v;
        }
        // One pause for all the CPUs read, so a -a dump is a consistent snapshot.
        string text = vm.WithQuiescentVm(() =>
        {
            var sb = new StringBuilder();
            for (int c = first; c <= last; c++)
                sb.Append($"\nCPU#{c}\n").Append(RegisterDump.Format(vm.Vm.GetVcpuState(c)));
            return sb.ToString();
        });
        output.Append(text);
    }

    /// <summary>An HMP integer: decimal, or hex with 0x. On failure, the first character that does not belong.</summary>
    private static bool TryParseNumber(string text, out long value, out char bad)
    {
        value = 0;
        bad = text[0];
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && text.Length > 2;
        string digits = hex ? text[2..] : text;
        foreach (char ch in digits)
        {
            if (hex ? !char.IsAsciiHexDigit(ch) : !char.IsAsciiDigit(ch))
            {
                bad = ch;
                return false;
            }
        }
        return long.TryParse(digits, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private void Block(string[] args, string typed, StringBuilder output)
    {
        if (FlagAndValue(args, "-v", "block", typed, output) is var (verbose, device))
            output.Append(BlockCommands.Info(vm.Vm, device, verbose));
    }

    /// <summary>
    /// The argument shape <c>[-flag] [value]</c>: leading options (only <paramref name="flag"/> is known), then at most
    /// one value. Null once QEMU's complaint about anything else has been printed.
    /// </summary>
    private static (bool Flag, string? Value)? FlagAndValue(string[] args, string flag, string name, string typed, StringBuilder output)
    {
        int i = 0;
        bool set = false;
        for (; i < args.Length && args[i].StartsWith('-'); i++)
        {
            if (args[i] != flag)
            {
                Unsupported(output, name, args[i], typed);
                return null;
            }
            set = true;
        }
        string? value = i < args.Length ? args[i++] : null;
        if (i < args.Length)
        {
            Extraneous(output, name, typed);
            return null;
        }
        return (set, value);
    }

    private static void Help(StringBuilder output, string prefix, (string Name, string Args, string Help)[] commands)
    {
        foreach (var (name, args, help) in commands)
            output.Append($"{prefix}{name} {args} -- {help}\n");
    }
}
