using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace SharpVmm.EndToEnd;

/// <summary>
/// libvirt moves SharpVmm guests: virsh save / restore, and virsh migrate --live between two libvirtd instances of
/// the test's own (<see cref="PrivateLibvirtd"/>, each as on its own host) over loopback, the disk on storage both
/// see. The guest prints a counter on its console; it must go on from where it was, never start again.
/// </summary>
public sealed partial class LibvirtMigrationTests(ITestOutputHelper output)
{
    private const string UuidA = "5a1b2c3d-0000-4000-8000-00000000000a";
    private const string UuidB = "5a1b2c3d-0000-4000-8000-00000000000b";
    private readonly ITestOutputHelper _out = output;

    [GeneratedRegex(@"CNT=(\d+)\r?\n")]
    private static partial Regex CountLine();

    /// <summary>The emulator, kernel and initramfs where every instance's emulator (as libvirt-qemu) can read them.</summary>
    private static string PrepareShared()
    {
        string dir = PrivateLibvirtd.SharedDir;
        Directory.CreateDirectory(dir);
        string binary = Path.Combine(dir, "sharpvmm");
        File.Copy(RepoFiles.NativeBinary!, binary + ".new", overwrite: true);
        File.Move(binary + ".new", binary, overwrite: true);
        string emulator = Path.Combine(dir, "qemu-system-x86_64");
        if (!File.Exists(emulator)) File.CreateSymbolicLink(emulator, binary);
        File.Copy(GuestFiles.Kernel, Path.Combine(dir, "vmlinuz"), overwrite: true);
        File.Copy(GuestFiles.Initrd, Path.Combine(dir, "initrd.gz"), overwrite: true);
        return emulator;
    }

    /// <summary>A microvm domain (TCG: SharpVmm's emulator) with a qcow2 disk and a console counter, logged where the test reads it.</summary>
    public static string DomainXml(string name, string emulator, string disk, string serialLog, int memoryMiB = 128, int fillMiB = 0)
    {
        // fillMiB of RAM holding data (tmpfs), so a migration has that much to send beyond the zero pages.
        string cmd = "echo hello-from-guest; i=0; while [ ! -b /dev/vda ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; "
            + "echo sharpvmm-disk-data > /dev/vda; sync; echo DISK-WRITTEN; "
            + (fillMiB > 0 ? $"yes sharpvmm-fill | dd of=/fill bs=1M count={fillMiB} iflag=fullblock && echo FILLED; " : "")
            + "n=0; while :; do echo CNT=$n; n=$((n+1)); sleep 0.2; done";
        string b64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(cmd));
        string dir = Path.GetDirectoryName(emulator)!;
        return $"""
            <domain type='qemu'>
              <name>{name}</name>
              <memory unit='MiB'>{memoryMiB}</memory>
              <vcpu>1</vcpu>
              <os>
                <type arch='x86_64' machine='microvm'>hvm</type>
                <kernel>{dir}/vmlinuz</kernel>
                <initrd>{dir}/initrd.gz</initrd>
                <cmdline>console=ttyS0 panic=-1 quiet sharpvmm.cmd={b64}</cmdline>
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
                <serial type='pty'><log file='{serialLog}' append='on'/><target port='0'/></serial>
                <console type='pty'><target type='serial' port='0'/></console>
                <memballoon model='none'/>
              </devices>
            </domain>
            """;
    }

    private static string ReadLog(string path)
    {
        try { return File.Exists(path) ? File.ReadAllText(path, Encoding.Latin1) : ""; }
        catch (IOException) { return ""; }
    }

    private static List<long> Counts(string text, int from = 0)
    {
        var list = new List<long>();
        foreach (Match m in CountLine().Matches(text, Math.Min(from, text.Length))) list.Add(long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        return list;
    }

    private static long LastCount(string log)
    {
        var c = Counts(ReadLog(log));
        return c.Count == 0 ? -1 : c[^1];
    }

    private static void WaitForCount(string log, long atLeast, int from = 0, int seconds = 240)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            var c = Counts(ReadLog(log), from);
            if (c.Count > 0 && c[^1] >= atLeast) return;
            Thread.Sleep(200);
        }
        Assert.Fail($"the guest's console counter did not reach {atLeast} within {seconds} s (last: {LastCount(log)})");
    }

    /// <summary>
    /// The guest went on from <paramref name="before"/> (the last count before the operation): the counts printed
    /// after <paramref name="mark"/> rise to before+10, and none of them is lower than before (no restart).
    /// </summary>
    private void AssertCountsOn(string log, long before, int mark, string what)
    {
        WaitForCount(log, before + 10, mark);
        var after = Counts(ReadLog(log), mark);
        _out.WriteLine($"{what}: counter {before} before, then {after[0]}..{after[^1]}");
        Assert.True(after[0] >= before - 1 && after[0] <= before + 50, $"{what}: the counter went on at {after[0]} after {before}");
        for (int i = 1; i < after.Count; i++)
            Assert.True(after[i] == after[i - 1] + 1, $"{what}: the counter went from {after[i - 1]} to {after[i]}");
        Assert.DoesNotContain("hello-from-guest", ReadLog(log)[Math.Min(mark, ReadLog(log).Length)..]);
    }

    private void CheckDisk(string disk)
    {
        var check = PrivateLibvirtd.RunTool(_out, "/usr/bin/qemu-img", "check", disk);
        for (int i = 0; i < 40 && check.Code != 0 && check.Output.Contains("lock", StringComparison.Ordinal); i++)
        {
            Thread.Sleep(250);
            check = PrivateLibvirtd.RunTool(_out, "/usr/bin/qemu-img", "check", disk);
        }
        Assert.True(check.Code == 0, $"qemu-img check: {check.Output}");
    }

    private string NewDisk(string name)
    {
        string disk = Path.Combine(PrivateLibvirtd.SharedDir, name + ".qcow2");
        File.Delete(disk);
        Assert.Equal(0, PrivateLibvirtd.RunTool(_out, "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk, "16M").Code);
        // dynamic_ownership is off in the private instances: the emulator (libvirt-qemu) needs the file itself.
        Assert.Equal(0, PrivateLibvirtd.RunTool(_out, "/bin/chmod", "666", disk).Code);
        return disk;
    }

    [NeedsFact(Need.Libvirt, Need.MountNamespace, Need.QemuUtils, Need.LinuxGuest)]
    public void Virsh_save_and_restore_continue_a_running_guest_where_it_was()
    {
        const string Domain = PrivateLibvirtd.DomainPrefix + "save";
        string emulator = PrepareShared();
        string disk = NewDisk(Domain);
        string serial = Path.Combine(PrivateLibvirtd.SharedDir, Domain + "-serial.log");
        string saved = Path.Combine(PrivateLibvirtd.SharedDir, Domain + ".save");
        File.Delete(serial);
        File.Delete(saved);
        using var a = PrivateLibvirtd.Start("save-a", UuidA, _out);
        string xml = Path.Combine(PrivateLibvirtd.SharedDir, Domain + ".xml");
        File.WriteAllText(xml, DomainXml(Domain, emulator, disk, serial));
        a.Ok("create", xml);
        a.WaitForState(Domain, "running (booted)");
        WaitForCount(serial, 5);

        var clock = Stopwatch.StartNew();
        a.Ok("save", Domain, saved);
        _out.WriteLine($"virsh save: {clock.Elapsed.TotalSeconds:F2} s, {new FileInfo(saved).Length >> 20} MiB");
        Assert.Equal("(none)", a.DomState(Domain)); // a transient domain is gone once saved
        long before = LastCount(serial);
        int mark = ReadLog(serial).Length;
        Thread.Sleep(1000);
        Assert.Equal(before, LastCount(serial)); // nothing runs meanwhile

        clock.Restart();
        a.Ok("restore", saved);
        _out.WriteLine($"virsh restore: {clock.Elapsed.TotalSeconds:F2} s");
        a.WaitForState(Domain, "running (restored)");
        AssertCountsOn(serial, before, mark, "after restore");

        a.Ok("destroy", Domain);
        CheckDisk(disk);
        Assert.Equal(0, PrivateLibvirtd.RunTool(_out, "/usr/bin/qemu-img", "dd", "-f", "qcow2", "-O", "raw", $"if={disk}", $"of={disk}.head", "bs=512", "count=1").Code);
        Assert.StartsWith("sharpvmm-disk-data", Encoding.ASCII.GetString(File.ReadAllBytes($"{disk}.head")));
    }

    /// <summary>
    /// virsh migrate over loopback. --unsafe: the disk is shared (both "hosts" are this machine) but on a local file
    /// system, which libvirt cannot tell from storage only the source sees.
    /// </summary>
    private static string[] MigrateArgs(string domain, PrivateLibvirtd to, params string[] extra)
        => ["migrate", "--live", "--unsafe", domain, to.Uri, "--migrateuri", "tcp://127.0.0.1", "--listen-address", "127.0.0.1", .. extra];

    [NeedsFact(Need.Libvirt, Need.MountNamespace, Need.QemuUtils, Need.LinuxGuest)]
    public void Virsh_migrate_live_moves_a_running_guest_between_two_libvirtds_and_back_and_survives_refusals()
    {
        const string Domain = PrivateLibvirtd.DomainPrefix + "live";
        string emulator = PrepareShared();
        string disk = NewDisk(Domain);
        string serial = Path.Combine(PrivateLibvirtd.SharedDir, Domain + "-serial.log");
        File.Delete(serial);
        using var a = PrivateLibvirtd.Start("live-a", UuidA, _out);
        using var b = PrivateLibvirtd.Start("live-b", UuidB, _out);
        string xml = Path.Combine(PrivateLibvirtd.SharedDir, Domain + ".xml");
        File.WriteAllText(xml, DomainXml(Domain, emulator, disk, serial, fillMiB: 32));
        a.Ok("create", xml);
        a.WaitForState(Domain, "running (booted)");
        WaitForCount(serial, 5);
        Assert.Contains("FILLED", ReadLog(serial));

        // There and back: the source's domain is gone, the destination's runs, the counter goes on.
        foreach (var (from, to) in new[] { (a, b), (b, a) })
        {
            long before = LastCount(serial);
            int mark = ReadLog(serial).Length;
            var clock = Stopwatch.StartNew();
            from.Ok(MigrateArgs(Domain, to));
            _out.WriteLine($"virsh migrate --live {from.Name} -> {to.Name}: {clock.Elapsed.TotalSeconds:F2} s");
            Assert.Equal("(none)", from.DomState(Domain));
            to.WaitForState(Domain, "running (migrated)");
            AssertCountsOn(serial, before, mark, $"after the migration {from.Name} -> {to.Name}");
        }

        // The destination cannot start the guest (its disk is missing there): libvirt says why, the source runs on.
        string dumped = Path.Combine(PrivateLibvirtd.SharedDir, Domain + "-missing.xml");
        File.WriteAllText(dumped, a.Ok("dumpxml", "--migratable", Domain).Replace(disk, Path.Combine(PrivateLibvirtd.SharedDir, "no-such-disk.qcow2"), StringComparison.Ordinal));
        var (code, text) = a.Virsh(MigrateArgs(Domain, b, "--xml", dumped));
        Assert.True(code != 0, "the migration to a destination without the disk succeeded");
        Assert.Contains("no-such-disk", text, StringComparison.Ordinal);
        Assert.StartsWith("running", a.DomState(Domain), StringComparison.Ordinal);
        Assert.Equal("(none)", b.DomState(Domain));
        long last = LastCount(serial);
        WaitForCount(serial, last + 5);

        // A different memory size is refused (libvirt's ABI check) before anything moves.
        string bigger = Path.Combine(PrivateLibvirtd.SharedDir, Domain + "-bigger.xml");
        File.WriteAllText(bigger, DomainXml(Domain, emulator, disk, serial, memoryMiB: 192, fillMiB: 32).Replace("<name>", $"<uuid>{a.Ok("domuuid", Domain)}</uuid><name>", StringComparison.Ordinal));
        (code, text) = a.Virsh(MigrateArgs(Domain, b, "--xml", bigger));
        Assert.True(code != 0, "a migration to a bigger guest succeeded");
        Assert.Contains("memory", text, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("running", a.DomState(Domain), StringComparison.Ordinal);

        a.Ok("destroy", Domain);
        CheckDisk(disk);
    }
    /// <summary>
    /// The connection is cut mid-way (the destination's emulator is killed while the pages flow, throttled to
    /// 1 MiB/s so that the cut lands inside the transfer): libvirt reports the failure, the source runs on.
    /// </summary>
    [NeedsFact(Need.Libvirt, Need.MountNamespace, Need.QemuUtils, Need.LinuxGuest)]
    public void A_migration_cut_mid_way_fails_in_libvirt_and_the_source_runs_on()
    {
        const string Domain = PrivateLibvirtd.DomainPrefix + "cut";
        string emulator = PrepareShared();
        string disk = NewDisk(Domain);
        string serial = Path.Combine(PrivateLibvirtd.SharedDir, Domain + "-serial.log");
        File.Delete(serial);
        using var a = PrivateLibvirtd.Start("cut-a", UuidA, _out);
        using var b = PrivateLibvirtd.Start("cut-b", UuidB, _out);
        string xml = Path.Combine(PrivateLibvirtd.SharedDir, Domain + ".xml");
        File.WriteAllText(xml, DomainXml(Domain, emulator, disk, serial, fillMiB: 32));
        a.Ok("create", xml);
        a.WaitForState(Domain, "running (booted)");
        WaitForCount(serial, 5);

        // 32 MiB of data at 1 MiB/s: the transfer takes half a minute, the cut comes 5 s into it.
        var clock = Stopwatch.StartNew();
        var migrate = Task.Run(() => a.Virsh(MigrateArgs(Domain, b, "--bandwidth", "1")));
        int? target = null;
        while (clock.Elapsed < TimeSpan.FromSeconds(60) && !migrate.IsCompleted && (target = b.EmulatorPid(Domain)) is null) Thread.Sleep(100);
        Assert.True(target is not null, "the destination's emulator did not start");
        Thread.Sleep(5000);
        Assert.False(migrate.IsCompleted, $"the migration throttled to 1 MiB/s ended within {clock.Elapsed.TotalSeconds:F1} s: {(migrate.IsCompleted ? migrate.Result.Output : "")}");
        using (var dst = Process.GetProcessById(target.Value)) dst.Kill(); // SIGKILL: the stream ends mid-page
        _out.WriteLine($"destination emulator {target} killed {clock.Elapsed.TotalSeconds:F1} s after virsh migrate began");
        Assert.True(migrate.Wait(TimeSpan.FromSeconds(120)), "virsh migrate did not return after the cut");
        var (code, text) = migrate.Result;
        _out.WriteLine($"virsh migrate after the cut: {clock.Elapsed.TotalSeconds:F1} s, exit {code}: {text}");
        Assert.True(code != 0, "virsh migrate succeeded though the destination was killed");
        Assert.Contains("error", text, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("running", a.DomState(Domain), StringComparison.Ordinal);
        Assert.Equal("(none)", b.DomState(Domain));
        long last = LastCount(serial);
        WaitForCount(serial, last + 5);

        a.Ok("destroy", Domain);
        CheckDisk(disk);
    }
}
