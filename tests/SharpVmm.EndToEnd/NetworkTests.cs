using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace SharpVmm.EndToEnd;

/// <summary>Debian's virtio_net driver against our virtio-net, over libslirp and over a tap, on the emulator.</summary>
public sealed partial class NetworkTests : IDisposable
{
    private string? _namespace;
    private GuestRun? _vm;

    public void Dispose()
    {
        _vm?.Dispose();
        if (_namespace is not null) Tools.Run("ip", "netns", "del", _namespace);
    }

    private static string Cmd(string shell) => "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(shell));

    [LinuxGuestFact]
    public void Over_user_networking_the_guest_gets_a_dhcp_lease_and_fetches_a_file_from_a_host_http_server()
    {
        var payload = new byte[1 << 20];
        new Random(20261124).NextBytes(payload);
        using var server = new HttpServer(payload);
        string cmd = "echo MAC=$(cat /sys/class/net/eth0/address); ifconfig eth0 up; "
            + "udhcpc -i eth0 -n -q -t 10 -T 3 -s /bin/true 2>&1 | grep -o 'lease of [0-9.]* obtained'; "
            + "ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up; route add default gw 10.0.2.2; "
            + "u0=$(cut -d' ' -f1 /proc/uptime | tr -d .); "
            + $"echo MD5=$(wget -q -O - http://10.0.2.2:{server.Port}/x | md5sum | cut -d' ' -f1); "
            + "u1=$(cut -d' ' -f1 /proc/uptime | tr -d .); echo WGET-CS=$((u1-u0))";
        var r = SharpVmmProcess.Run(900, "run", "--accel", "emu", "--memory", "256M", "--kernel", LinuxGuestTests.Kernel,
            "--initrd", LinuxGuestTests.Initrd, "--net", "user,mac=52:54:00:c0:ff:ee",
            "--append", "console=ttyS0 quiet " + Cmd(cmd));
        string output = r.Stdout.Replace("\r", "");
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stderr}\n{output}");
        Assert.Contains("MAC=52:54:00:c0:ff:ee\n", output);
        Assert.Contains("lease of 10.0.2.15 obtained", output);
        Assert.Contains($"MD5={Convert.ToHexStringLower(MD5.HashData(payload))}\n", output);
        Assert.Equal(1, server.Requests);
        Assert.Contains("SHARPVMM-EXIT=0", output);
        var cs = WgetTime().Match(output);
        if (cs.Success && int.Parse(cs.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0)
            Console.WriteLine($"guest wget of 1 MiB over --net user: {int.Parse(cs.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * 10} ms (guest clock)");
    }

    [Theory]
    [InlineData("bridge,br=br0", "--net backend 'bridge' is not known")]
    [InlineData("tap,ifname=bad/name", "not a valid interface name")]
    public void A_bad_net_option_is_one_clear_line_before_anything_runs(string spec, string expected)
    {
        string kernel = LinuxGuestTests.Kernel;
        if (!File.Exists(kernel)) kernel = typeof(NetworkTests).Assembly.Location; // any file: parsing fails first
        var r = SharpVmmProcess.Run(120, "run", "--accel", "emu", "--kernel", kernel, "--net", spec);
        Assert.Equal(2, r.ExitCode); // a bad value is a bad command line (README: exit 2)
        Assert.Equal("", r.Stdout);
        Assert.StartsWith("sharpvmm: ", r.Stderr);
        Assert.Contains(expected, r.Stderr);
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [NeedsFact(Need.LinuxGuest, Need.Tap)]
    public void Over_a_tap_in_a_private_namespace_guest_and_host_ping_each_other()
    {
        if (!Tools.Exists("ping")) Assert.Fail("ping missing on the host: scripts/setup.sh installs iputils-ping");
        _namespace = "sharpvmm-test-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        Run("ip", "netns", "add", _namespace);
        Run("ip", "-n", _namespace, "link", "set", "lo", "up");
        // The guest waits for the host side to answer, pings it, then waits to be pinged (counted by its own stack).
        string cmd = "ifconfig eth0 10.77.0.2 netmask 255.255.255.0 up; "
            + "i=0; until ping -c 1 -W 2 10.77.0.1 >/dev/null 2>&1 || [ $i -ge 60 ]; do i=$((i+1)); sleep 1; done; "
            + "ping -c 3 -W 10 10.77.0.1 | grep 'packets transmitted'; echo GUEST-READY; "
            + "echos() { awk '/^Icmp:/{if(!h){for(i=1;i<=NF;i++)if($i==\"InEchos\")c=i;h=1}else print $c}' /proc/net/snmp; }; "
            + "i=0; while [ $(echos) -lt 3 ] && [ $i -lt 300 ]; do i=$((i+1)); sleep 1; done; echo ECHOS=$(echos)";
        var sharpvmm = SharpVmmProcess.StartInfo();
        _vm = new GuestRun("ip", ["netns", "exec", _namespace, sharpvmm.FileName, .. sharpvmm.ArgumentList,
            "run", "--accel", "emu", "--memory", "256M", "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd,
            "--net", "tap,ifname=tap0", "--append", "console=ttyS0 quiet " + Cmd(cmd)]);

        // The tap exists once sharpvmm built the VM; configure the host side inside the namespace.
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!Tools.Run("ip", "-n", _namespace, "-o", "link", "show").Contains(" tap0:", StringComparison.Ordinal))
        {
            Assert.False(_vm.HasExited, $"sharpvmm exited before creating tap0:\n{_vm.Output}");
            Assert.True(DateTime.UtcNow < deadline, "tap0 did not appear in the namespace within 3 minutes");
            Thread.Sleep(200);
        }
        Run("ip", "-n", _namespace, "addr", "add", "10.77.0.1/24", "dev", "tap0");
        Run("ip", "-n", _namespace, "link", "set", "tap0", "up");

        Assert.True(_vm.WaitFor("GUEST-READY", TimeSpan.FromMinutes(12)), $"the guest never got ready:\n{_vm.Output}");
        string ping = Tools.Run("ip", "netns", "exec", _namespace, "ping", "-c", "3", "-W", "30", "10.77.0.2");
        Assert.Contains("3 packets transmitted, 3 received", ping);
        Assert.True(_vm.WaitForExit(TimeSpan.FromMinutes(5)), $"the guest did not finish:\n{_vm.Output}");
        string output = _vm.Output.Replace("\r", "");
        Assert.True(_vm.ExitCode == 0, $"exit {_vm.ExitCode}\n{output}");
        Assert.Contains("3 packets transmitted, 3 packets received", output); // the guest's pings of the host
        var echos = Regex.Match(output, "ECHOS=([0-9]+)");
        Assert.True(echos.Success && int.Parse(echos.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 3, output);
        Assert.Contains("SHARPVMM-EXIT=0", output);
    }

    private static void Run(string file, params string[] args) => ExternalTool.RunOk(HostTools.Find(file) ?? file, args);

    [GeneratedRegex("WGET-CS=([0-9]+)")]
    private static partial Regex WgetTime();

    /// <summary>sharpvmm running in the background, its console collected as it comes.</summary>
    private sealed class GuestRun : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly Task _stdout, _stderr;

        public GuestRun(string file, IEnumerable<string> args)
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            _process = Process.Start(psi)!;
            _process.StandardInput.Close();
            _stdout = Pump(_process.StandardOutput);
            _stderr = Pump(_process.StandardError);
        }

        private Task Pump(StreamReader reader) => Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await reader.ReadAsync(buffer)) > 0)
                lock (_output) { _output.Append(buffer, 0, n); System.Threading.Monitor.PulseAll(_output); }
        });

        public string Output { get { lock (_output) return _output.ToString(); } }
        public bool HasExited => _process.HasExited;
        public int ExitCode => _process.ExitCode;

        public bool WaitFor(string text, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            lock (_output)
            {
                while (!_output.ToString().Contains(text, StringComparison.Ordinal))
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero || _process.HasExited && _stdout.IsCompleted) return _output.ToString().Contains(text, StringComparison.Ordinal);
                    System.Threading.Monitor.Wait(_output, TimeSpan.FromMilliseconds(Math.Min(500, left.TotalMilliseconds)));
                }
                return true;
            }
        }

        public bool WaitForExit(TimeSpan timeout)
        {
            if (!_process.WaitForExit(timeout)) return false;
            _process.WaitForExit();
            Task.WaitAll(_stdout, _stderr);
            return true;
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            _process.Dispose();
        }
    }

    /// <summary>A one-file HTTP/1.0 server on 127.0.0.1: GET /x answers the payload, anything else 404.</summary>
    private sealed class HttpServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly byte[] _payload;
        private readonly Task _loop;
        private int _requests;

        public HttpServer(byte[] payload)
        {
            _payload = payload;
            _listener.Start();
            _loop = Task.Run(Serve);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
        public int Requests => Volatile.Read(ref _requests);

        private async Task Serve()
        {
            while (true)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(); }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
                using (client)
                {
                    try
                    {
                        var stream = client.GetStream();
                        var request = new StringBuilder();
                        var buffer = new byte[1024];
                        while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                        {
                            int n = await stream.ReadAsync(buffer);
                            if (n == 0) break;
                            request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                        }
                        bool ok = request.ToString().StartsWith("GET /x ", StringComparison.Ordinal);
                        if (ok) Interlocked.Increment(ref _requests);
                        byte[] body = ok ? _payload : "not found\n"u8.ToArray();
                        string head = $"HTTP/1.0 {(ok ? "200 OK" : "404 Not Found")}\r\nContent-Length: {body.Length}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
                        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
                        await stream.WriteAsync(body);
                    }
                    catch (IOException) { /* the guest went away; the test's assertions tell */ }
                }
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            _loop.Wait(TimeSpan.FromSeconds(10));
        }
    }
}
