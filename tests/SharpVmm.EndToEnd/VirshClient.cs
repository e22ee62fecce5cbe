using Xunit.Abstractions;

namespace SharpVmm.EndToEnd;

/// <summary>
/// virsh against one libvirtd (the system instance, or a <see cref="PrivateLibvirtd"/> of a test's own), every call
/// and its output written to the test's log: the runner and the state waits both libvirt fixtures share.
/// </summary>
public sealed class VirshClient(string uri, string name, ITestOutputHelper? output)
{
    /// <summary>The system libvirtd's connection (scripts/libvirt-up.sh starts it).</summary>
    public const string SystemUri = "qemu:///system";

    public string Uri => uri;
    public string Name => name;

    public (int Code, string Output) Run(params string[] args) => RunTool(output, "/usr/bin/virsh", ["-c", uri, .. args]);

    /// <summary>virsh that must succeed; returns its output.</summary>
    public string Ok(params string[] args)
    {
        var (code, text) = Run(args);
        Assert.True(code == 0, $"virsh ({name}) {string.Join(' ', args)} failed: {text}");
        return text;
    }

    /// <summary>domstate --reason, or "(none)" when libvirt knows no such domain.</summary>
    public string DomState(string domain)
    {
        var (code, text) = Run("domstate", domain, "--reason");
        return code == 0 ? text : "(none)";
    }

    public void WaitForState(string domain, string expected, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        string state = "";
        while (DateTime.UtcNow < deadline)
        {
            state = DomState(domain);
            if (state == expected) return;
            Thread.Sleep(250);
        }
        Assert.Fail($"domain {domain} on {name} is '{state}', not '{expected}', after {seconds} s");
    }

    /// <summary>Runs a tool, up to 300 s; its exit code and its stdout and stderr together, trimmed.</summary>
    public static (int Code, string Output) RunTool(ITestOutputHelper? output, string file, params string[] args)
    {
        var r = ExternalTool.Run(file, args);
        string text = r.Output.Trim();
        try { output?.WriteLine($"$ {Path.GetFileName(file)} {string.Join(' ', args)} -> {r.ExitCode}: {text}"); }
        catch (InvalidOperationException) { } // no test running any more (disposal after the test)
        return (r.ExitCode, text);
    }
}
