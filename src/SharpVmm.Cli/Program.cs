using System.CommandLine;
using SharpVmm.Core;

namespace SharpVmm.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        if (Qemu.QemuPersonality.Arguments(args) is { } qemuArgs) return Qemu.QemuLauncher.Run(qemuArgs);
        var root = BuildRoot();
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // One line, no usage dump: scripts read stderr, people run --help.
            string message = string.Join(' ', parsed.Errors[0].Message.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            Console.Error.WriteLine($"sharpvmm: {message} (see 'sharpvmm {CommandPath(parsed)} --help')");
            return 2;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (VmmException ex)
        {
            Console.Error.WriteLine($"sharpvmm: {ex.Message}");
            return 1;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"sharpvmm: {ex.Message}");
            return 1;
        }
    }

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("SharpVmm: a virtual machine monitor in C#. Runs guests on KVM or on its own x86-64 CPU, with QEMU-compatible disk tools.");
        root.Add(Run.RunCommand.Create());
        var guest = Guest.GuestCommand.Create();
        guest.Add(Demo.HelloCommand.Create());
        root.Add(guest);
        root.Add(Qmp.QmpCommand.Create());
        root.Add(Img.ImgCommand.Create());
        root.Add(Host.HostCommand.Create());
        return root;
    }

    private static string CommandPath(ParseResult parsed)
    {
        var names = new List<string>();
        for (var r = parsed.CommandResult; r is not null && r.Parent is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, r.Command.Name);
        return names.Count == 0 ? "" : string.Join(' ', names);
    }
}
