using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.EndToEnd;

/// <summary>
/// Issue 7's acceptance for snapshots, as a user does it: a counting guest runs in one sharpvmm process, is saved with
/// QMP's snapshot-save, and `sharpvmm run ... --restore FILE` in a new process continues the count where it stopped.
/// </summary>
public sealed class SnapshotRestoreTests : IDisposable
{
    private const int ExitCode = (0x2A << 1) | 1;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-snap-e2e-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Theory, KvmInlineData("kvm"), InlineData("emu")]
    public async Task A_guest_snapshotted_mid_run_is_restored_in_a_new_process_and_continues(string accel)
    {
        // Long enough (seconds: ~18 ms a tick on this KVM, ~40 ms on emu) that the guest is still counting when the
        // test, polling its console, asks it to stop; the native binary starts in milliseconds, so nothing else slows it.
        const int ticks = 200;
        string bin = Path.Combine(_dir, "count.bin");
        File.WriteAllBytes(bin, CountingGuest.Assemble(ticks, accel == "kvm" ? 10_000 : 2_000_000));
        string snap = Path.Combine(_dir, "vm.snap");
        string[] vmArgs = ["--accel", accel, "--memory", "64M", "--flat", $"{bin}@0x1000", "--entry-mode", "real"];

        string before;
        string qmp = Path.Combine(_dir, "qmp.sock");
        using (var first = Start([.. vmArgs, "--serial", $"file:{Path.Combine(_dir, "a.txt")}", "--qmp", $"unix:{qmp}"]))
        {
            await using var client = await Connect(qmp, first);
            await WaitForLines("a.txt", 4, first);
            await client.ExecuteAsync("stop");
            var saved = (JsonObject)(await client.ExecuteAsync("snapshot-save", new JsonObject { ["file"] = snap }))!;
            Assert.Equal(snap, saved["file"]!.GetValue<string>());
            Assert.True(saved["zero-pages"]!.GetValue<long>() > saved["ram-pages"]!.GetValue<long>());
            before = ReadSerial("a.txt");
            await client.ExecuteAsync("quit");
            Assert.True(first.WaitForExit(60_000), "the first sharpvmm did not quit");
        }
        Assert.InRange(before.Count(c => c == '\n'), 4, ticks - 1);

        var restored = SharpVmmProcess.Run(120, ["run", .. vmArgs, "--serial", $"file:{Path.Combine(_dir, "b.txt")}", "--restore", snap]);
        Assert.Equal(ExitCode, restored.ExitCode);
        Assert.Contains("RAM mapped lazily", restored.Stderr);
        string after = ReadSerial("b.txt");
        Assert.DoesNotContain("0001\n", after);
        Assert.Equal(CountingGuest.FullOutput(ticks), before + after);
    }

    [Fact]
    public async Task A_snapshot_truncated_under_the_vm_restored_from_it_stops_it_with_a_clear_line_not_sigbus()
    {
        // Guest RAM is mapped from the snapshot file; truncating the file takes those pages away (even copied ones),
        // and the next guest access faults. The VMM must say so and exit 1, not die of SIGBUS with nothing said.
        string bin = Path.Combine(_dir, "count.bin");
        File.WriteAllBytes(bin, CountingGuest.Assemble(200, 2_000_000));
        string snap = Path.Combine(_dir, "vm.snap");
        string[] vmArgs = ["--accel", "emu", "--memory", "64M", "--flat", $"{bin}@0x1000", "--entry-mode", "real"];
        string qmp = Path.Combine(_dir, "qmp.sock");
        using (var first = Start([.. vmArgs, "--serial", $"file:{Path.Combine(_dir, "a.txt")}", "--qmp", $"unix:{qmp}"]))
        {
            await using var client = await Connect(qmp, first);
            await WaitForLines("a.txt", 2, first);
            await client.ExecuteAsync("stop");
            await client.ExecuteAsync("snapshot-save", new JsonObject { ["file"] = snap });
            await client.ExecuteAsync("quit");
            Assert.True(first.WaitForExit(60_000), "the first sharpvmm did not quit");
        }
        string qmp2 = Path.Combine(_dir, "qmp2.sock");
        var psi = SharpVmmProcess.StartInfo(["run", .. vmArgs, "--serial", $"file:{Path.Combine(_dir, "b.txt")}", "--qmp", $"unix:{qmp2}", "--restore", snap, "-S"]);
        psi.WorkingDirectory = _dir;
        using var restored = Process.Start(psi)!;
        restored.StandardInput.Close();
        _ = restored.StandardOutput.ReadToEndAsync();
        var stderr = restored.StandardError.ReadToEndAsync();
        await using (var client = await Connect(qmp2, restored))
        {
            using (var f = new FileStream(snap, FileMode.Open, FileAccess.Write)) f.SetLength(4096);
            // The first guest access after cont faults and the process exits, which may come before cont's reply.
            try { await client.ExecuteAsync("cont"); }
            catch (QmpConnectionException) { }
        }
        Assert.True(restored.WaitForExit(60_000), "the restored VM kept running on a truncated snapshot");
        string err = await stderr;
        Assert.True(restored.ExitCode == 1, $"exit {restored.ExitCode} (135 is SIGBUS); stderr: {err}");
        Assert.Contains($"is mapped from '{snap}', which was truncated while the VM ran", err);
    }

    [Theory, KvmInlineData("kvm"), InlineData("emu")]
    public void A_corrupt_or_mismatched_snapshot_is_one_clear_line_and_a_nonzero_exit(string accel)
    {
        string bin = Path.Combine(_dir, "count.bin");
        File.WriteAllBytes(bin, CountingGuest.Assemble(3, 10));
        string snap = Path.Combine(_dir, "bad.snap");
        File.WriteAllBytes(snap, Encoding.ASCII.GetBytes("SVMSNAP1 but then nothing useful"));
        var r = SharpVmmProcess.Run(120, "run", "--accel", accel, "--flat", $"{bin}@0x1000", "--serial", "none", "--restore", snap);
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("sharpvmm: ", lines[0]);
        Assert.Contains("truncated", lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr);

        var missing = SharpVmmProcess.Run(120, "run", "--accel", accel, "--flat", $"{bin}@0x1000", "--serial", "none", "--restore", Path.Combine(_dir, "nope.snap"));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("cannot open snapshot", missing.Stderr);
    }

    [Theory, KvmInlineData("kvm"), InlineData("emu")]
    public async Task Qmp_snapshot_commands_take_qemus_arguments_and_report_errors_as_qmp_errors(string accel)
    {
        string bin = Path.Combine(_dir, "count.bin");
        File.WriteAllBytes(bin, CountingGuest.Assemble(100_000, accel == "kvm" ? 10_000 : 200_000));
        string qmp = Path.Combine(_dir, "qmp.sock");
        using var vm = Start(["--accel", accel, "--memory", "32M", "--flat", $"{bin}@0x1000", "--serial", "none", "--qmp", $"unix:{qmp}"]);
        await using var client = await Connect(qmp, vm);

        // QEMU's form: a job id, a tag, the vmstate node and the devices; the file is TAG.snap in the working directory.
        await client.ExecuteAsync("snapshot-save", new JsonObject
        {
            ["job-id"] = "save0", ["tag"] = "before-upgrade", ["vmstate"] = "disk0", ["devices"] = new JsonArray("disk0"),
        });
        Assert.True(File.Exists(Path.Combine(_dir, "before-upgrade.snap")));
        var status = (JsonObject)(await client.ExecuteAsync("query-status"))!;
        Assert.Equal("running", status["status"]!.GetValue<string>()); // paused for the save, running again after

        var loaded = (JsonObject)(await client.ExecuteAsync("snapshot-load", new JsonObject { ["job-id"] = "load0", ["tag"] = "before-upgrade" }))!;
        Assert.Equal("mapped", loaded["ram"]!.GetValue<string>());
        Assert.Equal("running", ((JsonObject)(await client.ExecuteAsync("query-status"))!)["status"]!.GetValue<string>());

        async Task<QmpException> Error(string command, JsonObject args) => await Assert.ThrowsAsync<QmpException>(() => client.ExecuteAsync(command, args));
        Assert.Contains("'file' is missing", (await Error("snapshot-save", [])).Description);
        Assert.Contains("cannot name a file", (await Error("snapshot-save", new JsonObject { ["tag"] = "../escape" })).Description);
        Assert.Contains("expected: string", (await Error("snapshot-save", new JsonObject { ["file"] = 5 })).Description);
        Assert.Contains("unexpected", (await Error("snapshot-save", new JsonObject { ["file"] = "x", ["bogus"] = 1 })).Description);
        Assert.Contains("cannot open snapshot", (await Error("snapshot-load", new JsonObject { ["file"] = Path.Combine(_dir, "none.snap") })).Description);
        File.WriteAllBytes(Path.Combine(_dir, "junk.snap"), new byte[8192]);
        var junk = await Error("snapshot-load", new JsonObject { ["file"] = Path.Combine(_dir, "junk.snap") });
        Assert.Equal("GenericError", junk.ErrorClass);
        Assert.Contains("not a SharpVmm snapshot", junk.Description);
        // After the refused loads the VM still runs.
        Assert.Equal("running", ((JsonObject)(await client.ExecuteAsync("query-status"))!)["status"]!.GetValue<string>());
        await client.ExecuteAsync("quit");
        Assert.True(vm.WaitForExit(60_000));
    }

    private Process Start(string[] runArgs) => SharpVmmProcess.StartRun(_dir, runArgs);

    private static Task<QmpClient> Connect(string socket, Process vm) => SharpVmmProcess.ConnectQmpAsync(socket, vm, 60);

    private async Task WaitForLines(string serial, int lines, Process vm)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (ReadSerial(serial).Count(c => c == '\n') < lines)
        {
            if (vm.HasExited) Assert.Fail($"sharpvmm exited with {vm.ExitCode} before the guest printed {lines} lines");
            if (DateTime.UtcNow > deadline) Assert.Fail($"the guest printed fewer than {lines} lines in 60 s");
            await Task.Delay(20);
        }
    }

    private string ReadSerial(string name)
    {
        string p = Path.Combine(_dir, name);
        if (!File.Exists(p)) return "";
        using var f = new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(f).ReadToEnd();
    }
}
