using System.Text.Json.Nodes;
using SharpVmm.Monitor.Client;

namespace SharpVmm.Monitor.Tests;

public sealed class HumanMonitorTests
{
    private static async Task<string> Hmp(QmpClient c, string line, int? cpu = null)
    {
        var args = new JsonObject { ["command-line"] = line };
        if (cpu is { } i) args["cpu-index"] = i;
        return (await c.ExecuteAsync("human-monitor-command", args))!.GetValue<string>();
    }

    [Fact]
    public async Task Info_status_block_version_help_and_unknown_commands_read_as_in_QEMU()
    {
        await using var t = TestVm.Counting();
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        Assert.Equal("VM status: paused (prelaunch)\r\n", await Hmp(c, "info status"));
        t.Vm.Start();
        Assert.Equal("VM status: running\r\n", await Hmp(c, "info status"));
        Assert.Equal("", await Hmp(c, "stop"));
        Assert.Equal("VM status: paused\r\n", await Hmp(c, "info status"));
        Assert.Equal("", await Hmp(c, "c"));
        Assert.Equal("", await Hmp(c, "info block"));
        Assert.Equal("7.2.0 (" + t.Server.Version.Package + ")\r\n", await Hmp(c, "info version"));
        Assert.Equal("unknown command: 'frob'\r\n", await Hmp(c, "frob"));
        Assert.Equal("unknown command: 'info frob'\r\n", await Hmp(c, "info frob"));
        string help = await Hmp(c, "help");
        Assert.Contains("info [subcommand] -- show various information about the system state\r\n", help);
        Assert.Contains("stop|s  -- stop emulation\r\n", help);
        Assert.Contains("info registers [-a|vcpu] -- show the cpu registers", await Hmp(c, "help info"));
        Assert.Equal(await Hmp(c, "help info"), await Hmp(c, "info"));
        Assert.Equal("", await Hmp(c, ""));
        t.Vm.Stop();
        await t.Vm.Exited;
        Assert.Equal("VM status: paused (shutdown)\r\n", await Hmp(c, "info status"));
        Assert.StartsWith("Error: Resetting the Virtual Machine is required", await Hmp(c, "cont"));
    }

    [Fact]
    public async Task Info_registers_reads_a_running_guest_without_visible_stop()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        using var watcher = RawQmp.Negotiated(t.SocketPath);
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        t.WaitForCount(1000);
        string regs = await Hmp(c, "info registers");
        Assert.StartsWith("\r\nCPU#0\r\nRAX=", regs);
        Assert.Contains("RBX=0000000000008000", regs);
        Assert.Matches("RIP=00000000001000[0-9a-f]{2} RFL=", regs);
        Assert.Contains("CS64", regs);
        var efer = System.Text.RegularExpressions.Regex.Match(regs, "EFER=([0-9a-f]{16})");
        Assert.True(efer.Success);
        Assert.NotEqual(0UL, Convert.ToUInt64(efer.Groups[1].Value, 16) & (1 << 10)); // LMA: the guest is in long mode
        string cpu0 = await Hmp(c, "info registers", cpu: 0);
        Assert.StartsWith("\r\nCPU#0\r\nRAX=", cpu0);
        Assert.Contains("RBX=0000000000008000", cpu0);
        Assert.StartsWith("\r\nCPU#0\r\n", await Hmp(c, "info registers -a"));
        Assert.Equal("CPU#7 not available\r\n", await Hmp(c, "info registers 7"));
        // Still running, and nobody saw a STOP/RESUME for the peek.
        Assert.Equal("running", (await c.ExecuteAsync("query-status"))!["status"]!.GetValue<string>());
        ulong before = t.Count;
        t.WaitForCount(before + 1000);
        Assert.True(watcher.IsQuiet(200));
    }
}
