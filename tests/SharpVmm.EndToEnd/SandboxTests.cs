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

    /// <summary>libvirt 9.0's argument once query-command-line-options lists "sandbox" (see ../shared/LIBVIRT.md).</summary>
    private const string LibvirtSandbox = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

    [NeedsFact(Need.Seccomp, Need.LinuxGuest)]
    public async Task The_qemu_personality_boots_linux_under_libvirts_sandbox_argument()
    {
        string qmp = Path.Combine(_dir, "q.sock");
        string cmd = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("uname -s; exit 5"));
        var psi = SharpVmmProcess.StartInfo(["qemu-system-x86_64", "-S", "-machine", "microvm", "-accel", "tcg", "-m", "256",
            "-nodefaults", "-display", "none", "-serial", "stdio", "-qmp", $"unix:{qmp},server=on,wait=off",
            "-kernel", LinuxGuestTests.Kernel, "-initrd", LinuxGuestTests.Initrd, "-append", "console=ttyS0 sharpvmm.cmd=" + cmd,
            "-sandbox", LibvirtSandbox]);
        psi.WorkingDirectory = _dir;
        using var vm = Process.Start(psi)!;
        vm.StandardInput.Close();
        var stdout = vm.StandardOutput.ReadToEndAsync();
        var stderr = vm.StandardError.ReadToEndAsync();
        await using (var client = await SharpVmmProcess.ConnectQmpAsync(qmp, vm, 60))
        {
            // The filter is on before the guest runs its first instruction (the monitor may answer just before it is).
            for (int i = 0; i < 100 && Status(vm.Id)["Seccomp"] != "2"; i++) await Task.Delay(100);
            Assert.Equal("2", Status(vm.Id)["Seccomp"]);
            Assert.Equal("1", Status(vm.Id)["NoNewPrivs"]);
            await client.ExecuteAsync("cont");
            if (!vm.WaitForExit(600_000))
            {
                vm.Kill(entireProcessTree: true);
                Assert.Fail("the guest did not power off within 600 s under the sandbox");
            }
        }
        vm.WaitForExit();
        string output = (await stdout).Replace("\r", "", StringComparison.Ordinal);
        Assert.True(vm.ExitCode == 0, $"exit {vm.ExitCode}\n{await stderr}\n{output}");
        Assert.Contains("SHARPVMM-INIT-OK", output);
        Assert.Contains("\nLinux\n", output);
        Assert.Contains("SHARPVMM-EXIT=5", output);
        Assert.DoesNotContain("sandbox", await stderr);
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
