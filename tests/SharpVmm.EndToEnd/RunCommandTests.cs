using System.Text.Json.Nodes;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Cli.Demo;

namespace SharpVmm.EndToEnd;

/// <summary>The foundation's acceptance commands, run as a user would run them.</summary>
public sealed class RunCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-e2e-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("emu", "real"), InlineData("emu", "protected"), InlineData("emu", "long")]
    [KvmInlineData("kvm", "real"), KvmInlineData("kvm", "protected"), KvmInlineData("kvm", "long")]
    public void Hello_guest_prints_on_stdio_and_exits_with_its_code(string accel, string mode)
    {
        string bin = Path.Combine(_dir, $"hello-{mode}.bin");
        var made = SharpVmmProcess.Run(60, "guest", "hello", "--mode", mode, "--address", "0x1000", "-o", bin);
        Assert.Equal(0, made.ExitCode);
        var r = SharpVmmProcess.Run(120, "run", "--accel", accel, "--flat", $"{bin}@0x1000", "--entry-mode", mode, "--serial", "stdio");
        var m = Enum.Parse<EntryMode>(mode, ignoreCase: true);
        Assert.Equal(HelloGuest.Message(m), r.Stdout);
        Assert.Equal(HelloGuest.ExpectedExitCode(m), r.ExitCode);
        Assert.Equal("", r.Stderr);
    }

    [Theory]
    [InlineData("protected")]
    public void Serial_output_can_go_to_a_file(string mode)
    {
        string bin = Path.Combine(_dir, "hello.bin"), log = Path.Combine(_dir, "console.log");
        File.WriteAllBytes(bin, HelloGuest.Assemble(EntryMode.Protected, 0x1000));
        var r = SharpVmmProcess.Run(120, "run", "--accel", "emu", "--flat", $"{bin}@0x1000", "--entry-mode", mode, "--serial", $"file:{log}");
        Assert.Equal(65, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.Equal(HelloGuest.Message(EntryMode.Protected), File.ReadAllText(log));
    }

    [Theory]
    [InlineData("--no-such-option")]
    [InlineData("--accel", "qemu")]
    [InlineData("--memory", "12X")]
    [InlineData("--cpus", "zero")]
    [InlineData("--cpus", "0")]
    [InlineData("--entry-mode", "v86")]
    [InlineData("--flat", "/nonexistent/file.bin@0x1000")]
    [InlineData("--flat", "file.bin")]
    [InlineData("--kernel", "/nonexistent/vmlinuz")]
    [InlineData("--serial", "tcp:1234")]
    [InlineData("--paused")]
    [InlineData("-S")]
    public void Bad_options_give_one_line_on_stderr_and_a_nonzero_exit(params string[] args)
    {
        string bin = Path.Combine(_dir, "x.bin");
        File.WriteAllBytes(bin, [0xF4]);
        var full = new List<string> { "run" };
        full.AddRange(args);
        if (!args.Contains("--flat") && !args.Contains("--kernel") && args.Length > 0) full.AddRange(["--flat", $"{bin}@0x1000"]);
        var r = SharpVmmProcess.Run(60, [.. full]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal("", r.Stdout);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("sharpvmm: ", lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public async Task A_paused_vm_waits_in_prelaunch_until_qmp_cont()
    {
        string bin = Path.Combine(_dir, "hello.bin"), log = Path.Combine(_dir, "console.log"), qmp = Path.Combine(_dir, "q.sock");
        File.WriteAllBytes(bin, HelloGuest.Assemble(EntryMode.Protected, 0x1000));
        using var vm = SharpVmmProcess.StartRun(_dir, "--accel", "emu", "--flat", $"{bin}@0x1000", "--entry-mode", "protected",
            "--serial", $"file:{log}", "--qmp", $"unix:{qmp}", "-S");
        await using var client = await SharpVmmProcess.ConnectQmpAsync(qmp, vm, 60);
        var status = (JsonObject)(await client.ExecuteAsync("query-status"))!;
        Assert.Equal("prelaunch", status["status"]!.GetValue<string>());
        Assert.False(status["running"]!.GetValue<bool>());
        // The guest would print and exit within milliseconds if its vCPU ran.
        await Task.Delay(500);
        Assert.False(vm.HasExited);
        Assert.Equal("", File.Exists(log) ? File.ReadAllText(log) : "");

        await client.ExecuteAsync("cont");
        Assert.True(vm.WaitForExit(60_000), "the guest did not run to its exit after cont");
        Assert.Equal(65, vm.ExitCode);
        Assert.Equal(HelloGuest.Message(EntryMode.Protected), File.ReadAllText(log));
    }

    [Fact]
    public void Help_lists_every_run_option()
    {
        var r = SharpVmmProcess.Run(60, "run", "--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var o in new[] { "--accel", "--memory", "--cpus", "--kernel", "--initrd", "--append", "--flat", "--entry-mode", "--serial", "--paused" })
            Assert.Contains(o, r.Stdout);
    }
}
