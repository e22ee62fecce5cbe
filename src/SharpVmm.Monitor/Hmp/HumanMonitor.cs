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
        ("stop", "", "stop emulation"),
        ("system_powerdown", "", "send system power down event"),
        ("system_reset", "", "reset the system"),
    ];

    private static readonly (string Name, string Args, string Help)[] InfoCommands =
    [
        ("balloon", "", "show balloon information"),
        ("block", "", "show info of one block device or all block devices (SharpVmm: none until disks are attached)"),
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
                Run(call, words, (int)(cpuIndex ?? 0), commandLine.Trim(), output);
            }
            catch (QmpException ex)
            {
                output.Append("Error: ").Append(ex.Description).Append('\n');
            }
        }
        return output.Replace("\n", "\r\n").ToString();
    }

    private void Run(QmpCall call, string[] words, int cpu, string line, StringBuilder output)
    {
        switch (words[0])
        {
            case "help" or "?":
                if (words.Length > 1 && words[1] == "info") Help(output, "info ", InfoCommands);
                else if (words.Length > 1) Help(output, "", Array.FindAll(Commands, c => c.Name.Split('|').Contains(words[1])));
                else Help(output, "", Commands);
                break;
            case "info":
                Info(words, cpu, line, output);
                break;
            case "stop":
                vm.Stop();
                break;
            case "cont" or "c":
                vm.Cont();
                break;
            case "balloon":
                MemoryCommands.SetTarget(vm, words.Length > 1 && long.TryParse(words[1], out long mb) && mb > 0 && mb < long.MaxValue >> 20
                    ? mb << 20 : throw QmpException.Generic("balloon: give the target in MB, e.g. balloon 128"));
                break;
            case "system_reset":
                vm.Reset();
                break;
            case "system_powerdown":
                vm.Powerdown();
                break;
            case "quit" or "q":
                vm.Quit(call);
                break;
            default:
                output.Append($"unknown command: '{words[0]}'\n");
                break;
        }
    }

    private void Info(string[] words, int cpu, string line, StringBuilder output)
    {
        if (words.Length == 1)
        {
            Help(output, "info ", InfoCommands);
            return;
        }
        switch (words[1])
        {
            case "status":
                output.Append("VM status: ").Append(vm.StatusName switch
                {
                    "running" => "running",
                    "paused" => "paused",
                    string other => $"paused ({other})",
                }).Append('\n');
                break;
            case "registers":
                Registers(words, cpu, output);
                break;
            case "block":
                // No block devices exist yet; QEMU prints nothing for a machine without drives either.
                break;
            case "balloon" or "memory_size_summary" or "memory" or "ksm":
                output.Append(MemoryCommands.HumanInfo(vm, words[1]));
                break;
            case "version":
                output.Append($"{version.Major}.{version.Minor}.{version.Micro} ({version.Package})\n");
                break;
            default:
                output.Append($"unknown command: '{string.Join(' ', words[..2])}'\n");
                break;
        }
    }

    private void Registers(string[] words, int cpu, StringBuilder output)
    {
        int first = cpu, last = cpu;
        if (words.Length > 2)
        {
            if (words[2] == "-a") (first, last) = (0, vm.Vm.VcpuCount - 1);
            else if (int.TryParse(words[2], out int n) && n >= 0 && n < vm.Vm.VcpuCount) first = last = n;
            else throw QmpException.Generic($"invalid vcpu '{words[2]}': give -a or a number below {vm.Vm.VcpuCount}");
        }
        // One pause for all the CPUs read, so a -a dump is a consistent snapshot.
        string text = vm.WithQuiescentVm(() =>
        {
            var sb = new StringBuilder();
            for (int i = first; i <= last; i++)
                sb.Append($"\nCPU#{i}\n").Append(RegisterDump.Format(vm.Vm.GetVcpuState(i)));
            return sb.ToString();
        });
        output.Append(text);
    }

    private static void Help(StringBuilder output, string prefix, (string Name, string Args, string Help)[] commands)
    {
        foreach (var (name, args, help) in commands)
            output.Append($"{prefix}{name} {args} -- {help}\n");
    }
}
