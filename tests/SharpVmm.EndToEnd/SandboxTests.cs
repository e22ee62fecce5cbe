using System.Diagnostics;
using System.Text.Json.Nodes;
using SharpVmm.Boot.Flat;
using SharpVmm.Cli.Demo;

namespace SharpVmm.EndToEnd;

/// <summary>
/// The seccomp sandbox (--sandbox, on by default; the QEMU personality's -sandbox on), seen from outside the VMM
/// process: it is installed, the VM works under it, and a call it refuses ends the process with a line naming it.
/// </summary>
public sealed class SandboxTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-sandbox-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (Process Vm, string Qmp, string Log) StartPaused(params string[] extra)
    {
        string bin = Path.Combine(_dir, "hello.bin"), log = Path.Combine(_dir, "serial.log"), qmp = Path.Combine(_dir, "q.sock");
        File.WriteAllBytes(bin, HelloGuest.Assemble(EntryMode.Protected, 0x1000));
        var psi = SharpVmmProcess.StartInfo(["run", "--accel", "emu", "--flat", $"{bin}@0x1000", "--entry-mode", "protected",
            "--serial", $"file:{log}", "--qmp", $"unix:{qmp}", "-S", .. extra]);
        psi.WorkingDirectory = _dir;
        psi.Environment.Remove("SHARPVMM_SANDBOX"); // the default is what is tested
        var vm = Process.Start(psi)!;
        vm.StandardInput.Close();
        return (vm, qmp, log);
    }

    private static Dictionary<string, string> Status(int pid)
    {
        var d = new Dictionary<string, string>();
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            if (line.IndexOf(':') is int c and > 0) d[line[..c]] = line[(c + 1)..].Trim();
        return d;
    }

    [NeedsFact(Need.Seccomp)]
    public async Task The_filter_is_on_by_default_and_the_guest_runs_under_it()
    {
        var (vm, qmp, log) = StartPaused();
        using (vm)
        {
            var stderr = vm.StandardError.ReadToEndAsync();
            await using var client = await SharpVmmProcess.ConnectQmpAsync(qmp, vm, 60);
            var status = Status(vm.Id);
            Assert.Equal("2", status["Seccomp"]);       // SECCOMP_MODE_FILTER
            Assert.Equal("1", status["NoNewPrivs"]);
            // Every thread has it (TSYNC), not only the one that installed it.
            foreach (string task in Directory.GetDirectories($"/proc/{vm.Id}/task"))
                Assert.Contains("Seccomp:\t2", File.ReadAllText(Path.Combine(task, "status")));
            await client.ExecuteAsync("cont");
            Assert.True(vm.WaitForExit(60_000), "the guest did not run to its exit under the sandbox");
            Assert.Equal(65, vm.ExitCode);
            Assert.Equal(HelloGuest.Message(EntryMode.Protected), File.ReadAllText(log));
            Assert.Equal("", await stderr);
        }
    }

    [NeedsFact(Need.Seccomp)]
    public async Task Sandbox_off_installs_nothing()
    {
        var (vm, qmp, _) = StartPaused("--sandbox", "off");
        using (vm)
        {
            await using var client = await SharpVmmProcess.ConnectQmpAsync(qmp, vm, 60);
            Assert.Equal("0", Status(vm.Id)["Seccomp"]);
            await client.ExecuteAsync("quit");
            Assert.True(vm.WaitForExit(30_000));
        }
    }

    /// <summary>
    /// As code an attacker got to run inside the VMM would: gdb stops the process and has it make a call through
    /// libc. The filter traps it; the process must die of SIGSYS rather than do it.
    /// </summary>
    private async Task<(int ExitCode, string Stderr, string Gdb)> CallInside(string expression)
    {
        var (vm, qmp, _) = StartPaused();
        using (vm)
        {
            var stderr = vm.StandardError.ReadToEndAsync();
            await using (var client = await SharpVmmProcess.ConnectQmpAsync(qmp, vm, 60))
                await client.ExecuteAsync("query-status");
            var gdb = ExternalTool.Run("gdb", ["-p", vm.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "-batch", "-nx",
                "-ex", "handle SIGSYS nostop noprint pass", "-ex", "call " + expression], timeoutMs: 120_000);
            Assert.True(vm.WaitForExit(60_000), $"the VMM survived a forbidden call; gdb said: {gdb.Output}");
            return (vm.ExitCode, await stderr, gdb.Output);
        }
    }

    [NeedsFact(Need.Seccomp, Need.Gdb)]
    public async Task Execve_made_inside_the_running_vmm_kills_it_with_a_line_naming_the_call()
    {
        var (code, stderr, gdb) = await CallInside("(long)syscall(59, \"/bin/sh\", 0, 0)");
        Assert.True(code == 128 + 31, $"exit {code}, not killed by SIGSYS; gdb said: {gdb}");
        Assert.Equal("sharpvmm: sandbox: system call execve (59) is not allowed: stopping the VM process (--sandbox off runs without the filter)\n", stderr);
    }

    [NeedsFact(Need.Seccomp, Need.Gdb)]
    public async Task A_shell_command_run_inside_the_vmm_never_runs()
    {
        string marker = Path.Combine(_dir, "shell-ran");
        var (code, _, gdb) = await CallInside($"(int)system(\"touch {marker}\")");
        Assert.True(code == 128 + 31, $"exit {code}, not killed by SIGSYS; gdb said: {gdb}");
        Assert.False(File.Exists(marker), "system() ran a command inside the sandbox");
        // No line is asserted here: posix_spawn blocks every signal around its clone, and a trap while SIGSYS is
        // blocked is the kernel's to deliver, with the default action (the process dies; the audit log names the call).
    }
}
