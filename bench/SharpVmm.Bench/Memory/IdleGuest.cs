using System.Diagnostics;
using System.Text;

namespace SharpVmm.Bench.Memory;

/// <summary>A guest VMM process (SharpVmm or QEMU) left running idle: its console is watched for a marker, its memory read from /proc.</summary>
internal sealed class IdleGuest : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _out = new();

    public IdleGuest(string name, string program, IEnumerable<string> args)
    {
        Name = name;
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        _p = Process.Start(psi)!;
        _p.StandardInput.Close();
        _p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.Append(e.Data).Append('\n'); };
        _p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.Append(e.Data).Append('\n'); };
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
    }

    public string Name { get; }
    public int Pid => _p.Id;

    /// <summary>False when the marker did not come within the timeout or the process ended first.</summary>
    public bool WaitFor(string marker, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            lock (_out) if (_out.ToString().Contains(marker, StringComparison.Ordinal)) return true;
            if (_p.HasExited) return false;
            Thread.Sleep(250);
        }
        return false;
    }

    public string Tail()
    {
        lock (_out)
        {
            string s = _out.ToString();
            return s.Length < 1500 ? s : s[^1500..];
        }
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
