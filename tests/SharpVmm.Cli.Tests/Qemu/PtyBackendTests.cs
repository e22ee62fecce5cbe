using System.Text;
using SharpVmm.Devices.Serial;

namespace SharpVmm.Cli.Tests.Qemu;

/// <summary>The pty serial backend libvirt's &lt;serial type='pty'&gt; gets: raw both ways, with a copy of the output in the log.</summary>
public sealed class PtyBackendTests
{
    [Fact]
    public void Output_reaches_the_terminal_raw_input_reaches_the_guest_and_the_log_gets_a_copy()
    {
        string log = Path.GetTempFileName();
        try
        {
            using var pty = new PtyBackend(log);
            Assert.StartsWith("/dev/pts/", pty.Path);
            var received = new List<byte>();
            var got = new ManualResetEventSlim();
            pty.Start(data =>
            {
                lock (received) received.AddRange(data.ToArray());
                got.Set();
            });
            using var terminal = new FileStream(pty.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1);
            pty.Write("line\n"u8);
            var buf = new byte[16];
            int n = terminal.Read(buf, 0, buf.Length);
            Assert.Equal("line\n", Encoding.ASCII.GetString(buf, 0, n)); // raw: no CR added
            terminal.Write("x\r"u8);
            terminal.Flush();
            Assert.True(got.Wait(TimeSpan.FromSeconds(5)), "input reached the guest side");
            Thread.Sleep(100);
            lock (received) Assert.Equal("x\r", Encoding.ASCII.GetString(received.ToArray()));
            Assert.Equal("line\n", File.ReadAllText(log));
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public async Task Output_while_no_terminal_is_open_never_blocks()
    {
        using var pty = new PtyBackend();
        var chunk = new byte[4096];
        var done = Task.Run(() =>
        {
            for (int i = 0; i < 1024; i++) pty.Write(chunk); // 4 MiB, far more than the kernel buffers
        });
        Assert.Same(done, await Task.WhenAny(done, Task.Delay(TimeSpan.FromSeconds(20)))); // dropped, not waited on
    }

    [Fact]
    public void The_backend_spec_names_pty_with_a_log()
    {
        using var pty = Assert.IsType<PtyBackend>(CharBackends.Create("pty"));
        Assert.Throws<SharpVmm.Core.ConfigurationException>(() => CharBackends.Create("pty,colour=on"));
    }
}
