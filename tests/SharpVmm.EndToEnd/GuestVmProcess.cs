using System.Diagnostics;
using System.Text;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.EndToEnd;

/// <summary>
/// A long-running <c>sharpvmm run</c> of the Debian guest on emu, watched while it runs: its console is collected line
/// by line so a test can wait for markers, and its PID lets the test read the VMM's memory from /proc.
/// </summary>
internal sealed class GuestVmProcess : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();
    private readonly object _gate = new();

    public GuestVmProcess(string name, string guestCommand, params string[] extraArgs)
    {
        Name = name;
        var psi = SharpVmmProcess.StartInfo();
        foreach (var a in new[] { "run", "--accel", "emu", "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd,
                     "--serial", "stdio", "--append", "console=ttyS0 quiet " + GuestInitScript.CommandLineWord(guestCommand) })
            psi.ArgumentList.Add(a);
        foreach (var a in extraArgs) psi.ArgumentList.Add(a);
        _p = Process.Start(psi)!;
        _p.StandardInput.Close();
        _p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_gate) _out.Append(e.Data).Append('\n'); };
        _p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_gate) _err.Append(e.Data).Append('\n'); };
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
    }

    public string Name { get; }
    public int Pid => _p.Id;
    public bool HasExited => _p.HasExited;
    public int ExitCode => _p.ExitCode;

    public string Output
    {
        get { lock (_gate) return _out.ToString().Replace("\r", ""); }
    }

    public string Errors
    {
        get { lock (_gate) return _err.ToString(); }
    }

    /// <summary>Waits until the console shows <paramref name="marker"/> (at the start of a line); fails with the console so far.</summary>
    public void WaitFor(string marker, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains("\n" + marker, StringComparison.Ordinal) && !Output.StartsWith(marker, StringComparison.Ordinal))
        {
            if (_p.HasExited) Assert.Fail($"{Name} exited ({_p.ExitCode}) before printing {marker}\n{Errors}\n{Tail()}");
            if (DateTime.UtcNow > deadline) Assert.Fail($"{Name} did not print {marker} within {timeout.TotalSeconds:0} s\n{Errors}\n{Tail()}");
            Thread.Sleep(250);
        }
    }

    /// <summary>The last value printed on a line "NAME: VALUE kB" (as /proc/meminfo prints), or null.</summary>
    public long? LastMeminfoKiB(string field)
    {
        var lines = Output.Split('\n');
        for (int i = lines.Length - 1; i >= 0; i--)
        {
            if (!lines[i].StartsWith(field + ":", StringComparison.Ordinal)) continue;
            var parts = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && long.TryParse(parts[1], out long v)) return v;
        }
        return null;
    }

    public string Tail(int chars = 3000)
    {
        string o = Output;
        return o.Length <= chars ? o : o[^chars..];
    }

    public void WaitForExit(TimeSpan timeout)
    {
        if (!_p.WaitForExit(timeout)) Assert.Fail($"{Name} did not exit within {timeout.TotalSeconds:0} s");
        _p.WaitForExit();
    }

    public void Dispose()
    {
        try
        {
            if (!_p.HasExited)
            {
                _p.Kill(entireProcessTree: true);
                _p.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _p.Dispose();
    }
}
