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
    private readonly VirshClient _virsh;

    public LibvirtTests(ITestOutputHelper output)
    {
        _out = output;
        _virsh = new VirshClient(VirshClient.SystemUri, "system", output);
    }

    public void Dispose()
    {
        Virsh("destroy", Domain);
        Virsh("undefine", Domain);
    }

    private (int Code, string Output) Run(string file, params string[] args) => VirshClient.RunTool(_out, file, args);

    private (int Code, string Output) Virsh(params string[] args) => _virsh.Run(args);

    private string Ok(params string[] args) => _virsh.Ok(args);

    private void WaitForState(string expected, int seconds = 60) => _virsh.WaitForState(Domain, expected, seconds);

    /// <summary>
    /// scripts/libvirt-up.sh, then the emulator, kernel and initramfs where libvirt-qemu can read them (outside root's
    /// home, world-readable); returns the emulator's path (a qemu-system-x86_64 link to the native binary).
    /// </summary>
    private string Prepare()
    {
        string root = RepoFiles.Root!;
        var (up, upText) = Run(Path.Combine(root, "scripts", "libvirt-up.sh"));
        Assert.True(up == 0, $"scripts/libvirt-up.sh: {upText}");
        Virsh("destroy", Domain);
        Virsh("undefine", Domain);
        Directory.CreateDirectory(Dir);
        File.Copy(RepoFiles.NativeBinary!, Path.Combine(Dir, "sharpvmm.new"), overwrite: true);
        File.Move(Path.Combine(Dir, "sharpvmm.new"), Path.Combine(Dir, "sharpvmm"), overwrite: true);
        string emulator = Path.Combine(Dir, "qemu-system-x86_64");
        if (!File.Exists(emulator)) File.CreateSymbolicLink(emulator, Path.Combine(Dir, "sharpvmm"));
        // libvirt re-probes an emulator only when the <emulator> path's ctime changes: a new binary must be noticed.
        Assert.Equal(0, Run("/usr/bin/touch", "-h", emulator).Code);
        File.Copy(GuestFiles.Kernel, Path.Combine(Dir, "vmlinuz"), overwrite: true);
        File.Copy(GuestFiles.Initrd, Path.Combine(Dir, "initrd.gz"), overwrite: true);
        File.Delete(SerialLog);
        return emulator;
    }

    /// <summary>The test's microvm domain: a qcow2 disk, a user-mode NIC, a pty console logged to <see cref="SerialLog"/>; the guest's init runs <paramref name="command"/>.</summary>
    private static string DomainXml(string emulator, string disk, string command, string onCrash, string devices = "")
    {
        string cmd = Convert.ToBase64String(Encoding.UTF8.GetBytes(command));
        return $"""
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
              <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>{onCrash}</on_crash>
              <devices>
                <emulator>{emulator}</emulator>
                <controller type='usb' model='none'/>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='qcow2'/><source file='{disk}'/><target dev='vda' bus='virtio'/>
                  <address type='virtio-mmio'/>
                </disk>
                <interface type='user'><model type='virtio'/><address type='virtio-mmio'/></interface>
                <serial type='pty'><log file='{SerialLog}' append='on'/><target port='0'/></serial>
                <console type='pty'><target type='serial' port='0'/></console>
                <memballoon model='none'/>{devices}
              </devices>
            </domain>
            """;
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
        string emulator = Prepare();
        string disk = Path.Combine(Dir, "disk.qcow2");
        File.Delete(disk);
        Assert.Equal(0, Run("/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk, "16M").Code);
        File.Delete(SerialLog);

        string cmd = (
            // virtio_blk probes asynchronously: until /dev/vda is a block device, "> /dev/vda" would make a plain file
            // in the initramfs and the disk would stay empty (seen as lost data after shutdown before this wait).
            "echo hello-from-guest; i=0; while [ ! -b /dev/vda ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; "
            + "echo sharpvmm-disk-data > /dev/vda; sync; echo DISK-WRITTEN; ip link | grep -c eth0; exec sh");
        string xml = DomainXml(emulator, disk, cmd, "destroy");
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
        AssertDomstats(Ok("domstats", Domain));

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

        clock.Restart();
        Ok("destroy", Domain); // SIGTERM; libvirt waits for the emulator's exit (SIGKILL after 10 s)
        _out.WriteLine($"virsh destroy: {clock.Elapsed.TotalSeconds:F2} s");
        WaitForState("shut off (destroyed)");
    }

    /// <summary>
    /// A guest that panics (its pvpanic device, libvirt's &lt;panic model='isa'/&gt;) ends as libvirt shows it for
    /// QEMU: on_crash preserve leaves it "crashed (panicked)", on_crash destroy "shut off (crashed)". A guest that
    /// powers off by itself (no virsh shutdown) ends "shut off (shutdown)".
    /// </summary>
    [LibvirtFact]
    public void A_guest_that_panics_or_powers_off_by_itself_ends_as_libvirt_shows_it_for_qemu()
    {
        string emulator = Prepare();
        string disk = Path.Combine(Dir, "disk.qcow2");
        File.Delete(disk);
        Assert.Equal(0, Run("/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk, "16M").Code);
        const string Panic = "echo SHARPVMM-PANICKING; echo c > /proc/sysrq-trigger";
        const string PanicDevice = "\n    <panic model='isa'/>";
        string xmlPath = Path.Combine(Dir, "domain.xml");

        foreach (var (onCrash, expected) in new[] { ("preserve", "crashed (panicked)"), ("destroy", "shut off (crashed)") })
        {
            File.WriteAllText(xmlPath, DomainXml(emulator, disk, Panic, onCrash, PanicDevice));
            Ok("define", xmlPath);
            int before = ConsoleCount("SHARPVMM-PANICKING");
            Ok("start", Domain);
            Assert.True(WaitForConsole("SHARPVMM-PANICKING", 240, before + 1), "the guest started to panic");
            WaitForState(expected);
            Assert.Equal(before + 1, ConsoleCount("SHARPVMM-PANICKING")); // stopped, not rebooted (panic=-1)
            if (onCrash == "preserve")
            {
                Assert.Contains("State:          crashed", Ok("dominfo", Domain));
                Ok("destroy", Domain);
                WaitForState("shut off (destroyed)");
            }
            Ok("undefine", Domain); // the next definition gets a new UUID under the same name
        }

        File.WriteAllText(xmlPath, DomainXml(emulator, disk, "echo SHARPVMM-POWERING-OFF; poweroff -f", "destroy"));
        Ok("define", xmlPath);
        Ok("start", Domain);
        Assert.True(WaitForConsole("SHARPVMM-POWERING-OFF", 240), "the guest started to power off");
        WaitForState("shut off (shutdown)");
        Ok("undefine", Domain);
    }

    /// <summary>
    /// virsh domstats of the running guest: libvirt's state, vcpu, balloon and block groups, the block counters
    /// from query-blockstats (the guest read its initramfs' disk probe and wrote its marker), the capacity from the
    /// image. Each key=value line is one statistic.
    /// </summary>
    private void AssertDomstats(string text)
    {
        var stats = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in text.Split('\n', StringSplitOptions.TrimEntries))
        {
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0) stats[line[..eq]] = line[(eq + 1)..];
        }
        long Num(string key)
        {
            Assert.True(stats.TryGetValue(key, out string? v), $"domstats has no {key}: {text}");
            return long.Parse(v, System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.Equal(1, Num("state.state")); // running
        Assert.Equal(1, Num("vcpu.current"));
        Assert.Equal(1, Num("vcpu.0.state"));
        Assert.True(Num("vcpu.0.time") > 0, "vcpu.0.time");
        Assert.Equal(128L << 10, Num("balloon.current")); // KiB
        Assert.True(Num("balloon.rss") > 0, "balloon.rss");
        Assert.Equal(1, Num("block.count"));
        Assert.Equal("vda", stats["block.0.name"]);
        Assert.True(Num("block.0.rd.reqs") > 0, "block.0.rd.reqs");
        Assert.True(Num("block.0.rd.bytes") >= 512 * Num("block.0.rd.reqs"), "block.0.rd.bytes");
        Assert.True(Num("block.0.wr.reqs") > 0, "block.0.wr.reqs"); // the marker the guest wrote
        Assert.True(Num("block.0.wr.bytes") >= 512, "block.0.wr.bytes");
        Assert.True(Num("block.0.rd.times") > 0, "block.0.rd.times");
        Assert.Equal(16L << 20, Num("block.0.capacity"));
    }
}
