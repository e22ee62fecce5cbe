using System.Diagnostics;
using Xunit.Abstractions;

namespace SharpVmm.EndToEnd;

/// <summary>
/// A libvirtd of a test's own, as on another host (scripts/libvirt-private.sh): its own mount namespace with its own
/// /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and a copy of /etc/libvirt with its own
/// host_uuid, its own virtlogd. The system libvirtd and its domains are never touched. Domains a test makes must be
/// named <see cref="DomainPrefix"/>...; disposing destroys those that are left and stops both daemons.
/// </summary>
public sealed class PrivateLibvirtd : IDisposable
{
    public const string DomainPrefix = "sharpvmm-mig-";
    /// <summary>Where every instance keeps its folders, and <see cref="SharedDir"/> the files all of them see.</summary>
    public const string Root = "/var/lib/sharpvmm-mig";
    public static readonly string SharedDir = Path.Combine(Root, "shared");

    private readonly Process _daemon;
    private readonly ITestOutputHelper? _out;
    private readonly VirshClient _virsh;

    private PrivateLibvirtd(string name, string state, Process daemon, ITestOutputHelper? output)
    {
        Name = name;
        State = state;
        _daemon = daemon;
        _out = output;
        _virsh = new VirshClient(Uri, name, output);
    }

    public string Name { get; }
    public string State { get; }

    /// <summary>The connection URI (virsh -c), and the one another daemon's migration names this one by.</summary>
    public string Uri => $"qemu+unix:///system?socket={State}/run/libvirt-sock";

    /// <summary>The domain's emulator log (stderr of the emulator, as libvirt keeps it).</summary>
    public string DomainLog(string domain) => Path.Combine(State, "log", "qemu", domain + ".log");

    /// <summary>The pid of a running domain's emulator, from the pid file libvirt writes; null if none.</summary>
    public int? EmulatorPid(string domain)
    {
        try
        {
            return int.Parse(File.ReadAllText(Path.Combine(State, "run", "qemu", domain + ".pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or FormatException) { return null; }
    }

    /// <summary>Starts an instance named <paramref name="name"/> with host UUID <paramref name="uuid"/> and waits until it answers.</summary>
    public static PrivateLibvirtd Start(string name, string uuid, ITestOutputHelper? output = null)
    {
        string state = Path.Combine(Root, name);
        string script = Path.Combine(RepoFiles.Root!, "scripts", "libvirt-private.sh");
        // A previous run that died may have left daemons behind: their pid files name them.
        RunTool(output, script, "stop", state);
        if (Directory.Exists(state)) Directory.Delete(state, recursive: true);
        Directory.CreateDirectory(state);
        var psi = new ProcessStartInfo(script) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "start", state, uuid }) psi.ArgumentList.Add(a);
        var daemon = Process.Start(psi)!;
        var log = new System.Text.StringBuilder();
        daemon.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        daemon.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        var instance = new PrivateLibvirtd(name, state, daemon, output);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (daemon.HasExited)
            {
                instance.Dispose();
                lock (log) throw new InvalidOperationException($"libvirtd '{name}' exited at start ({daemon.ExitCode}): {log}");
            }
            if (instance.Virsh("version").Code == 0) return instance;
            if (DateTime.UtcNow > deadline)
            {
                instance.Dispose();
                throw new TimeoutException($"libvirtd '{name}' did not answer within 60 s");
            }
            Thread.Sleep(500);
        }
    }

    public (int Code, string Output) Virsh(params string[] args) => _virsh.Run(args);

    /// <summary>virsh that must succeed; returns its output.</summary>
    public string Ok(params string[] args) => _virsh.Ok(args);

    public string DomState(string domain) => _virsh.DomState(domain);

    public void WaitForState(string domain, string expected, int seconds = 60) => _virsh.WaitForState(domain, expected, seconds);

    /// <summary>Runs a tool, up to 300 s; its stdout and stderr together, trimmed.</summary>
    public static (int Code, string Output) RunTool(ITestOutputHelper? output, string file, params string[] args)
        => VirshClient.RunTool(output, file, args);

    public void Dispose()
    {
        var (code, list) = Virsh("list", "--all", "--name");
        if (code == 0)
        {
            foreach (string line in list.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!line.StartsWith(DomainPrefix, StringComparison.Ordinal)) continue;
                Virsh("destroy", line);
                Virsh("undefine", line);
            }
        }
        if (!_daemon.HasExited)
        {
            _daemon.Kill(); // libvirtd itself (the script exec'd it); domains were destroyed above
            _daemon.WaitForExit(TimeSpan.FromSeconds(20));
        }
        RunTool(_out, Path.Combine(RepoFiles.Root!, "scripts", "libvirt-private.sh"), "stop", State);
        _daemon.Dispose();
    }
}
