using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpVmm.Block;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.EndToEnd;

/// <summary>
/// Live migration between two real <c>sharpvmm run</c> processes on loopback, with the Debian guest on emu counting
/// on its console: it must go on counting on the target with no gap, no repeat and no second boot; a disk written
/// before must read back after; a killed target or a cancel must leave the source running.
/// </summary>
public sealed partial class MigrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-migrate-").FullName;
    private readonly List<LiveProcess> _processes = [];

    public void Dispose()
    {
        foreach (var p in _processes) p.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static string Cmd(string shell) => "sharpvmm.cmd=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(shell));

    private string[] GuestArgs(string shell, string qmp, params string[] more) =>
    [
        "run", "--accel", "emu", "--memory", "256M", "--kernel", LinuxGuestTests.Kernel, "--initrd", LinuxGuestTests.Initrd,
        "--append", "console=ttyS0 quiet " + Cmd(shell), "--serial", "stdio", "--qmp", "unix:" + Path.Combine(_dir, qmp), .. more,
    ];

    private LiveProcess Start(params string[] args)
    {
        var p = new LiveProcess(args);
        _processes.Add(p);
        return p;
    }

    private async Task<QmpClient> Qmp(string name)
    {
        string path = Path.Combine(_dir, name);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (File.Exists(path)) return await QmpClient.ConnectAndNegotiateAsync("unix:" + path);
            }
            catch (QmpConnectionException) when (sw.Elapsed.TotalSeconds < 60) { }
            if (sw.Elapsed.TotalSeconds > 60) Assert.Fail($"QMP socket {path} did not appear within 60 s");
            await Task.Delay(100);
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task<JsonObject> WaitMigration(QmpClient qmp, Func<string, bool> done, int seconds)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var info = (JsonObject)(await qmp.ExecuteAsync("query-migrate"))!;
            string status = info["status"]?.GetValue<string>() ?? "none";
            if (done(status)) return info;
            if (sw.Elapsed.TotalSeconds > seconds) Assert.Fail($"migration still '{status}' after {seconds} s: {info.ToJsonString()}");
            await Task.Delay(100);
        }
    }

    private static async Task<string> Status(QmpClient qmp) => ((JsonObject)(await qmp.ExecuteAsync("query-status"))!)["status"]!.GetValue<string>();

    private static List<JsonObject> Drain(QmpClient qmp)
    {
        var list = new List<JsonObject>();
        while (qmp.Events.TryRead(out var e)) list.Add(e);
        return list;
    }

    [GeneratedRegex(@"^COUNT (\d+)$", RegexOptions.Multiline)]
    private static partial Regex CountLine();

    private static List<int> Counts(string output) => [.. CountLine().Matches(output.Replace("\r", "")).Select(m => int.Parse(m.Groups[1].Value))];

    /// <summary>
    /// One boot of the source serves every case (Linux boots take minutes on emu on a loaded host): a target killed
    /// mid-migration, a cancel, then the real migration. The guest counts on its console; it also wrote a qcow2 disk
    /// before, and once the host writes "READ" into a raw mailbox disk (polled with O_DIRECT), it reads that write back
    /// with its page cache dropped, writes again, and powers off.
    /// </summary>
    [LinuxGuestFact]
    public async Task A_counting_Linux_guest_survives_a_killed_target_and_a_cancel_then_moves_with_its_disk_and_counts_on()
    {
        string disk = Path.Combine(_dir, "disk.qcow2"), mailbox = Path.Combine(_dir, "mailbox.raw");
        ImageFactory.Create(disk, "qcow2", 64L << 20).Dispose();
        File.WriteAllBytes(mailbox, new byte[1 << 20]);
        string shell = "echo disk-before-migration | dd of=/dev/vda bs=512 seek=8 conv=sync 2>/dev/null; sync; echo DISK-WRITTEN; "
            + "i=0; while true; do echo COUNT $i; i=$((i+1)); "
            + "if [ \"$(dd if=/dev/vdb bs=512 count=1 iflag=direct 2>/dev/null | head -c 4)\" = READ ]; then "
            + "echo 3 > /proc/sys/vm/drop_caches; echo \"READBACK $(dd if=/dev/vda bs=512 skip=8 count=1 2>/dev/null | head -c 21)\"; "
            + "echo disk-after-migration | dd of=/dev/vda bs=512 seek=16 conv=sync 2>/dev/null; sync; break; fi; "
            + "sleep 0.2; done";
        string[] disks = ["--disk", $"{disk},format=qcow2", "--disk", $"{mailbox},format=raw"];
        var a = Start(GuestArgs(shell, "a.sock", disks));
        a.WaitFor("COUNT 2", 1800);
        Assert.Contains("DISK-WRITTEN", a.Stdout);
        await using var qa = await Qmp("a.sock");

        // Parameters and errors.
        Assert.Empty((await qa.ExecuteAsync("query-migrate"))!.AsObject()); // {} before any migration, as QEMU
        await qa.ExecuteAsync("migrate-set-parameters", new JsonObject { ["max-bandwidth"] = 2L << 20, ["downtime-limit"] = 100 });
        var p = (JsonObject)(await qa.ExecuteAsync("query-migrate-parameters"))!;
        Assert.Equal(2L << 20, p["max-bandwidth"]!.GetValue<long>());
        Assert.Equal(100, p["downtime-limit"]!.GetValue<long>());
        var bad = await Assert.ThrowsAsync<QmpException>(() => qa.ExecuteAsync("migrate", new JsonObject { ["uri"] = "unix:/tmp/nowhere" }));
        Assert.Contains("tcp:HOST:PORT", bad.Description);
        bad = await Assert.ThrowsAsync<QmpException>(() => qa.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = "tcp:127.0.0.1:1" }));
        Assert.Contains("--incoming defer", bad.Description);

        // 1. The target process dies mid-migration (slow link: the first round takes many seconds).
        int port = FreePort();
        var b1 = Start(GuestArgs(shell, "b1.sock", [.. disks, "--incoming", $"tcp:127.0.0.1:{port}"]));
        b1.WaitForError("waiting for an incoming migration", 300);
        await qa.ExecuteAsync("migrate", new JsonObject { ["uri"] = $"tcp:127.0.0.1:{port}" });
        var active = await WaitMigration(qa, s => s != "setup", 120);
        Assert.True(active["status"]!.GetValue<string>() == "active", active.ToJsonString());
        bad = await Assert.ThrowsAsync<QmpException>(() => qa.ExecuteAsync("migrate", new JsonObject { ["uri"] = $"tcp:127.0.0.1:{port}" }));
        Assert.Contains("already in progress", bad.Description);
        b1.Kill();
        var failed = await WaitMigration(qa, s => s != "active", 120);
        Assert.True(failed["status"]!.GetValue<string>() == "failed", failed.ToJsonString());
        Assert.Contains("connection", failed["error-desc"]!.GetValue<string>());
        Assert.Equal("running", await Status(qa));
        a.WaitFor($"COUNT {Counts(a.Stdout).Last() + 3}", 300);

        // 2. A cancel: the source runs on; the target refuses the cut stream and exits without running the guest.
        port = FreePort();
        var b2 = Start(GuestArgs(shell, "b2.sock", [.. disks, "--incoming", $"tcp:127.0.0.1:{port}"]));
        b2.WaitForError("waiting for an incoming migration", 300);
        Drain(qa);
        await qa.ExecuteAsync("migrate", new JsonObject { ["uri"] = $"tcp:127.0.0.1:{port}" });
        await WaitMigration(qa, s => s == "active", 120);
        await qa.ExecuteAsync("migrate_cancel");
        var cancelled = await WaitMigration(qa, s => s is not ("active" or "cancelling"), 120);
        Assert.True(cancelled["status"]!.GetValue<string>() == "cancelled", cancelled.ToJsonString());
        Assert.Equal("running", await Status(qa));
        Assert.Equal(["setup", "active", "cancelling", "cancelled"], MigrationEvents(Drain(qa)));
        Assert.Equal(1, b2.WaitForExit(120));
        Assert.Contains("incoming migration failed", b2.Stderr);
        Assert.Contains("truncated", b2.Stderr);
        Assert.Equal("", b2.Stdout);
        a.WaitFor($"COUNT {Counts(a.Stdout).Last() + 3}", 300);

        // 3. The real migration, with QEMU's default parameters.
        await qa.ExecuteAsync("migrate-set-parameters", new JsonObject { ["max-bandwidth"] = 128L << 20, ["downtime-limit"] = 300 });
        port = FreePort();
        var b = Start(GuestArgs(shell, "b.sock", [.. disks, "--incoming", $"tcp:127.0.0.1:{port}"]));
        await using var qb = await Qmp("b.sock");
        Assert.Equal("inmigrate", await Status(qb));
        b.WaitForError("waiting for an incoming migration", 300);
        Assert.Empty((await qa.ExecuteAsync("migrate", new JsonObject { ["uri"] = $"tcp:127.0.0.1:{port}" }))!.AsObject());
        var info = await WaitMigration(qa, s => s is "completed" or "failed" or "cancelled", 600);
        Assert.True(info["status"]!.GetValue<string>() == "completed", info.ToJsonString());
        var ram = info["ram"]!.AsObject();
        Assert.Equal(256L << 20, ram["total"]!.GetValue<long>());
        Assert.True(ram["duplicate"]!.GetValue<long>() > 10_000, info.ToJsonString()); // most of an idle guest's RAM is zero
        Assert.True(ram["normal"]!.GetValue<long>() > 1_000, info.ToJsonString());
        Assert.True(ram["transferred"]!.GetValue<long>() < 200L << 20, info.ToJsonString());
        Assert.InRange(info["downtime"]!.GetValue<long>(), 0, 30_000);
        Assert.Equal("postmigrate", await Status(qa));
        var aEvents = Drain(qa);
        Assert.Equal(["setup", "active", "device", "completed"], MigrationEvents(aEvents));
        Assert.Contains(aEvents, e => e["event"]!.GetValue<string>() == "STOP");

        // The target counts on; told through the mailbox, it reads the disk back, writes it, and powers off.
        b.WaitFor("COUNT", 300);
        Assert.Equal("running", await Status(qb));
        using (var f = new FileStream(mailbox, FileMode.Open, FileAccess.Write)) f.Write("READ"u8);
        var exit = b.WaitForExit(600);
        Assert.True(exit == 0, $"target exit {exit}\n{b.Stderr}\n{b.Stdout}");
        var bEvents = Drain(qb);
        Assert.Contains(bEvents, e => e["event"]!.GetValue<string>() == "RESUME");
        // "setup" comes when the target starts listening, which may be before this client negotiated.
        Assert.Equal(["active", "completed"], MigrationEvents(bEvents).Where(s => s != "setup"));
        await qa.ExecuteAsync("quit");
        Assert.Equal(0, a.WaitForExit(60));

        string sa = a.Stdout, sb = b.Stdout;
        Assert.Single(Regex.Matches(sa, "SHARPVMM-INIT-OK"));
        Assert.DoesNotContain("SHARPVMM-INIT-OK", sb); // no second boot
        Assert.DoesNotContain("Linux version", sb);
        Assert.DoesNotContain("READBACK", sa);
        // A line may be cut at the switch-over: the source's output and the target's, joined, count 0..N once each.
        var counts = Counts(sa + sb);
        Assert.Equal(Enumerable.Range(0, counts.Count), counts);
        Assert.NotEmpty(Counts(sb));
        Assert.Contains("READBACK disk-before-migration", sb);
        Assert.Contains("SHARPVMM-EXIT=0", sb);

        // Both writes are in the image, which the source flushed and let go before the target took it.
        using var image = ImageFactory.Open(disk, new ImageOpenOptions { ReadOnly = true });
        var sector = new byte[21];
        image.Read(8 * 512, sector);
        Assert.Equal("disk-before-migration", Encoding.ASCII.GetString(sector));
        image.Read(16 * 512, sector.AsSpan(0, 20));
        Assert.Equal("disk-after-migration", Encoding.ASCII.GetString(sector, 0, 20));
    }

    private static List<string> MigrationEvents(List<JsonObject> events) =>
        [.. events.Where(e => e["event"]!.GetValue<string>() == "MIGRATION").Select(e => e["data"]!["status"]!.GetValue<string>())];

    /// <summary>A sharpvmm process whose output is collected as it comes, for tests that interact with it while it runs.</summary>
    private sealed class LiveProcess : IDisposable
    {
        private readonly Process _p;
        private readonly StringBuilder _out = new(), _err = new();
        private readonly Task _readers;

        public LiveProcess(string[] args)
        {
            _p = Process.Start(SharpVmmProcess.StartInfo(args))!;
            _p.StandardInput.Close();
            _readers = Task.WhenAll(Pump(_p.StandardOutput, _out), Pump(_p.StandardError, _err));
        }

        private static async Task Pump(StreamReader r, StringBuilder into)
        {
            var buf = new char[4096];
            int n;
            while ((n = await r.ReadAsync(buf)) > 0)
                lock (into) into.Append(buf, 0, n);
        }

        public string Stdout { get { lock (_out) return _out.ToString(); } }
        public string Stderr { get { lock (_err) return _err.ToString(); } }

        public void WaitFor(string text, int seconds) => Wait(() => Stdout, text, seconds, "stdout");
        public void WaitForError(string text, int seconds) => Wait(() => Stderr, text, seconds, "stderr");

        private void Wait(Func<string> source, string text, int seconds, string what)
        {
            var sw = Stopwatch.StartNew();
            while (!source().Contains(text, StringComparison.Ordinal))
            {
                if (_p.HasExited && !source().Contains(text, StringComparison.Ordinal))
                {
                    _readers.Wait(TimeSpan.FromSeconds(5));
                    if (!source().Contains(text, StringComparison.Ordinal))
                        Assert.Fail($"sharpvmm exited ({_p.ExitCode}) before '{text}' appeared on {what}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
                }
                if (sw.Elapsed.TotalSeconds > seconds)
                    Assert.Fail($"'{text}' did not appear on {what} within {seconds} s\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
                Thread.Sleep(50);
            }
        }

        public int WaitForExit(int seconds)
        {
            if (!_p.WaitForExit(TimeSpan.FromSeconds(seconds)))
                Assert.Fail($"sharpvmm did not exit within {seconds} s\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
            _p.WaitForExit();
            _readers.Wait(TimeSpan.FromSeconds(10));
            return _p.ExitCode;
        }

        public void Kill()
        {
            _p.Kill(entireProcessTree: true);
            _p.WaitForExit();
        }

        public void Dispose()
        {
            try
            {
                if (!_p.HasExited) Kill();
            }
            catch (InvalidOperationException) { }
            _p.Dispose();
        }
    }
}
