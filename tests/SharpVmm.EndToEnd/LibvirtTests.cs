using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace SharpVmm.EndToEnd;

/// <summary>
/// A real libvirtd (Debian's 9.0) runs SharpVmm as the QEMU of a microvm domain of type 'qemu' with a qcow2 disk, a
/// user-mode NIC and a pty serial console logged through virtlogd, and virsh drives it: define (the capability
/// probe), start, the guest's console output, an interactive virsh console, suspend, resume, domstats, dominfo, reset
/// and reboot (each boots the guest again), shutdown (an ACPI power-button press the guest acts on), the disk's
/// content afterwards, start again, a libvirtd restart while it runs (reconnect), suspend and resume after it, destroy. The daemons are started by scripts/libvirt-up.sh (no systemd here); libvirt's
/// default NAT network is never started.
/// </summary>
public sealed class LibvirtTests : IDisposable
{
    private const string Domain = "sharpvmm-e2e";
    private const string Dir = "/var/lib/libvirt/sharpvmm-e2e";
    private const string SerialLog = "/var/log/libvirt/qemu/sharpvmm-e2e-serial.log";
    private readonly ITestOutputHelper _out;

    public LibvirtTests(ITestOutputHelper output) => _out = output;

    public void Dispose()
    {
        Virsh("destroy", Domain);
        Virsh("undefine", Domain);
    }

    private (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not finish within 120 s");
        }
        p.WaitForExit();
        string text = (stdout.Result + stderr.Result).Trim();
        _out.WriteLine($"$ {Path.GetFileName(file)} {string.Join(' ', args)} -> {p.ExitCode}: {text}");
        return (p.ExitCode, text);
    }

    private (int Code, string Output) Virsh(params string[] args) => Run("/usr/bin/virsh", ["-c", "qemu:///system", .. args]);

    private string Ok(params string[] args)
    {
        var (code, text) = Virsh(args);
        Assert.True(code == 0, $"virsh {string.Join(' ', args)} failed: {text}");
        return text;
    }

    private void WaitForState(string expected, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        string state = "";
        while (DateTime.UtcNow < deadline)
        {
            state = Virsh("domstate", Domain, "--reason").Output;
            if (state == expected) return;
            Thread.Sleep(250);
        }
        Assert.Fail($"domain state is '{state}', not '{expected}', after {seconds} s");
    }

    private static bool WaitForConsole(string text, int seconds, int count = 1)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            if (ConsoleCount(text) >= count) return true;
            Thread.Sleep(500);
        }
        return false;
    }

    private static int ConsoleCount(string text)
    {
        try
        {
            if (!File.Exists(SerialLog)) return 0;
            string log = File.ReadAllText(SerialLog, Encoding.Latin1);
            int n = 0;
            for (int at = log.IndexOf(text, StringComparison.Ordinal); at >= 0; at = log.IndexOf(text, at + text.Length, StringComparison.Ordinal)) n++;
            return n;
        }
        catch (IOException) { return 0; }
    }

    /// <summary>
    /// virsh console as a person uses it: it needs a terminal, which script(1) gives it; a line typed into it runs in
    /// the guest's shell, and Ctrl-] leaves it.
    /// </summary>
    private void TypeIntoVirshConsole(string line, string expected)
    {
        var psi = new ProcessStartInfo("/usr/bin/script", ["-q", "-c", $"virsh -c qemu:///system console {Domain} --force", "/dev/null"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi)!;
        var output = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.Append(e.Data).Append('\n'); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        Thread.Sleep(2000); // virsh connects to the console stream
        p.StandardInput.Write(line + "\r");
        p.StandardInput.Flush();
        bool seen = WaitForConsole(expected, 60);
        p.StandardInput.Write("\u001d"); // Ctrl-]
        p.StandardInput.Flush();
        if (!p.WaitForExit(TimeSpan.FromSeconds(20))) p.Kill(entireProcessTree: true);
        p.WaitForExit();
        string text;
        lock (output) text = output.ToString();
        _out.WriteLine($"virsh console: {text}");
        Assert.True(seen, $"'{line}' typed into virsh console did not print {expected}: {text}");
        Assert.Contains(expected, text); // and virsh showed it
    }

    [LibvirtFact]
    public void Virsh_runs_a_microvm_domain_on_sharpvmm_through_its_lifecycle()
    {
        string root = RepoFiles.Root!;
        var (up, upText) = Run(Path.Combine(root, "scripts", "libvirt-up.sh"));
        Assert.True(up == 0, $"scripts/libvirt-up.sh: {upText}");
        Virsh("destroy", Domain);
        Virsh("undefine", Domain);

        // Everything libvirt-qemu must read lives outside root's home, world-readable.
        Directory.CreateDirectory(Dir);
        File.Copy(RepoFiles.NativeBinary!, Path.Combine(Dir, "sharpvmm.new"), overwrite: true);
        File.Move(Path.Combine(Dir, "sharpvmm.new"), Path.Combine(Dir, "sharpvmm"), overwrite: true);
        string emulator = Path.Combine(Dir, "qemu-system-x86_64");
        if (!File.Exists(emulator)) File.CreateSymbolicLink(emulator, Path.Combine(Dir, "sharpvmm"));
        // libvirt re-probes an emulator only when the <emulator> path's ctime changes: a new binary must be noticed.
        Assert.Equal(0, Run("/usr/bin/touch", "-h", emulator).Code);
        string guest = Environment.GetEnvironmentVariable("SHARPVMM_GUEST_DIR")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharpvmm", "guest");
        File.Copy(Path.Combine(guest, "vmlinuz"), Path.Combine(Dir, "vmlinuz"), overwrite: true);
        File.Copy(Path.Combine(guest, "initrd.gz"), Path.Combine(Dir, "initrd.gz"), overwrite: true);
        string disk = Path.Combine(Dir, "disk.qcow2");
        File.Delete(disk);
        Assert.Equal(0, Run("/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk, "16M").Code);
        File.Delete(SerialLog);

        string cmd = Convert.ToBase64String(Encoding.UTF8.GetBytes(
            // virtio_blk probes asynchronously: until /dev/vda is a block device, "> /dev/vda" would make a plain file
            // in the initramfs and the disk would stay empty (seen as lost data after shutdown before this wait).
            "echo hello-from-guest; i=0; while [ ! -b /dev/vda ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; "
            + "echo sharpvmm-disk-data > /dev/vda; sync; echo DISK-WRITTEN; ip link | grep -c eth0; exec sh"));
        string xml = $"""
            <domain type='qemu'>
              <name>{Domain}</name>
              <memory unit='MiB'>128</memory>
              <vcpu>1</vcpu>
              <os>
                <type arch='x86_64' machine='microvm'>hvm</type>
                <kernel>{Dir}/vmlinuz</kernel>
                <initrd>{Dir}/initrd.gz</initrd>
                <cmdline>console=ttyS0 panic=-1 quiet sharpvmm.cmd={cmd}</cmdline>
              </os>
              <features><acpi/></features>
              <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
              <devices>
                <emulator>{emulator}</emulator>
                <controller type='usb' model='none'/>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='qcow2'/><source file='{disk}'/><target dev='vda' bus='virtio'/>
                  <address type='virtio-mmio'/>
                </disk>
                <interface type='user'><model type='virtio'/><address type='virtio-mmio'/></interface>
                <serial type='pty'><log file='{SerialLog}' append='off'/><target port='0'/></serial>
                <console type='pty'><target type='serial' port='0'/></console>
                <memballoon model='none'/>
              </devices>
            </domain>
            """;
        string xmlPath = Path.Combine(Dir, "domain.xml");
        File.WriteAllText(xmlPath, xml);

        var clock = Stopwatch.StartNew();
        Ok("define", xmlPath);
        _out.WriteLine($"define (with the capability probe): {clock.Elapsed.TotalSeconds:F2} s");
        clock.Restart();
        Ok("start", Domain);
        _out.WriteLine($"start -> running: {clock.Elapsed.TotalSeconds:F2} s");
        WaitForState("running (booted)");
        Assert.Contains("/dev/pts/", Ok("dumpxml", Domain)); // the pty path query-chardev reported
        Assert.True(WaitForConsole("hello-from-guest", 240), "the guest's console output reached the serial log");
        _out.WriteLine($"start -> first guest output: {clock.Elapsed.TotalSeconds:F2} s");
        Assert.True(WaitForConsole("DISK-WRITTEN", 60), "the guest wrote its disk");
        TypeIntoVirshConsole("echo CONSOLE-$((6*7))", "CONSOLE-42");

        Ok("suspend", Domain);
        WaitForState("paused (user)");
        Ok("resume", Domain);
        WaitForState("running (unpaused)");
        Assert.Contains("State:          running", Ok("dominfo", Domain));
        Assert.Contains("state.state=1", Ok("domstats", Domain));

        // reset: system_reset, the guest boots again at once (RESET, no SHUTDOWN), the domain keeps running.
        Ok("reset", Domain);
        Assert.True(WaitForConsole("hello-from-guest", 300, count: 2), "the guest booted again after virsh reset");
        WaitForState("running (unpaused)"); // a reset keeps the state's reason, as with QEMU
        Assert.True(WaitForConsole("DISK-WRITTEN", 60, count: 2), "the guest wrote its disk after the reset");
        // reboot: libvirt presses the power button; the guest powers off (SHUTDOWN); libvirt resets and continues it.
        Ok("reboot", Domain);
        Assert.True(WaitForConsole("SHARPVMM-POWER-BUTTON", 120), "the guest acted on the power button of virsh reboot");
        Assert.True(WaitForConsole("hello-from-guest", 300, count: 3), "the guest booted again after virsh reboot");
        WaitForState("running (unpaused)"); // the reason from before the reboot stays, as with QEMU 7.2 (measured)
        Assert.True(WaitForConsole("DISK-WRITTEN", 60, count: 3), "the guest wrote its disk after the reboot");

        // shutdown: the power button again; the guest's handler prints its marker, syncs and powers off.
        Ok("shutdown", Domain);
        Assert.True(WaitForConsole("SHARPVMM-POWER-BUTTON", 120, count: 2), "the guest acted on the power button of virsh shutdown");
        WaitForState("shut off (shutdown)");
        // The guest's raw write sends no FLUSH (sync on a block device only writes it back): its L1/L2 updates are in
        // the emulator's qcow2 cache until the emulator flushes at stop, before libvirt's SIGTERM/SIGKILL.
        // libvirt may show "shut off" a moment before the emulator has exited and let go of the image's locks.
        var check = Run("/usr/bin/qemu-img", "check", disk);
        for (int i = 0; i < 40 && check.Code != 0 && check.Output.Contains("lock", StringComparison.Ordinal); i++)
        {
            Thread.Sleep(250);
            check = Run("/usr/bin/qemu-img", "check", disk);
        }
        Assert.True(check.Code == 0, $"qemu-img check: {check.Output}");
        Assert.Equal(0, Run("/usr/bin/qemu-img", "dd", "-f", "qcow2", "-O", "raw", $"if={disk}", $"of={Dir}/head.raw", "bs=512", "count=1").Code);
        Assert.StartsWith("sharpvmm-disk-data", Encoding.ASCII.GetString(File.ReadAllBytes($"{Dir}/head.raw")));

        Ok("start", Domain);
        WaitForState("running (booted)");
        // libvirtd restarts while the guest runs: it reconnects to the monitor socket it handed over at start.
        int libvirtd = int.Parse(File.ReadAllText("/run/libvirtd.pid").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        using (var daemon = Process.GetProcessById(libvirtd))
        {
            daemon.Kill(); // SIGKILL of the daemon only; the domain's emulator lives on
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(30)), "libvirtd exited");
        }
        Assert.Equal(0, Run(Path.Combine(root, "scripts", "libvirt-up.sh")).Code);
        WaitForState("running (booted)");
        Ok("suspend", Domain);
        WaitForState("paused (user)");
        Ok("resume", Domain);
        WaitForState("running (unpaused)");

        Ok("destroy", Domain);
        WaitForState("shut off (destroyed)");
    }
}
