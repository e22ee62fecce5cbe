using System.CommandLine;

namespace SharpVmm.Cli.Host;

/// <summary><c>sharpvmm host</c>: the host features SharpVmm's guests rely on (KSM for now).</summary>
public static class HostCommand
{
    public static Command Create()
    {
        var host = new Command("host", "Inspect and configure host features guests rely on");
        host.Add(KsmCommand.Create());
        return host;
    }
}
