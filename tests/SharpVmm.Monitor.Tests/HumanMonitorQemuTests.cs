using System.Text.Json.Nodes;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Monitor.Tests;

/// <summary>
/// human-monitor-command's answers checked against qemu-system-x86_64 7.2 (-smp 2, -S) on this machine: which CPU
/// <c>info registers</c> shows, its argument errors, aliases, help, and the QMP-level errors.
/// </summary>
public sealed class HumanMonitorQemuTests
{
    private static async Task<string> Hmp(QmpClient c, string line, JsonNode? cpu = null)
    {
        var args = new JsonObject { ["command-line"] = line };
        if (cpu is not null) args["cpu-index"] = cpu;
        return (await c.ExecuteAsync("human-monitor-command", args))!.GetValue<string>();
    }

    private static string Try(string topic) => $"Try \"help {topic}\" for more information\r\n";

    [Fact]
    public async Task Info_registers_shows_the_current_or_named_cpu_and_rejects_arguments_as_QEMU_does()
    {
        await using var t = TestVm.Counting(cpus: 2);
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        // The monitor's current CPU is the first unless cpu-index says otherwise; one CPU is printed, not all.
        string current = await Hmp(c, "info registers");
        Assert.StartsWith("\r\nCPU#0\r\n", current);
        Assert.DoesNotContain("CPU#1", current);
        Assert.StartsWith("\r\nCPU#1\r\n", await Hmp(c, "info registers", 1));
        Assert.StartsWith("\r\nCPU#1\r\n", await Hmp(c, "info registers 1"));
        Assert.StartsWith("\r\nCPU#1\r\n", await Hmp(c, "info registers 0x1"));
        Assert.StartsWith("\r\nCPU#0\r\n", await Hmp(c, "info registers 0", 1)); // the argument beats cpu-index
        string all = await Hmp(c, "info registers -a 1"); // -a wins over a vcpu
        Assert.StartsWith("\r\nCPU#0\r\n", all);
        Assert.Contains("\r\nCPU#1\r\n", all);

        Assert.Equal("CPU#7 not available\r\n", await Hmp(c, "info registers 7"));
        Assert.Equal("invalid char 'x' in expression\r\n" + Try("info registers"), await Hmp(c, "info registers x"));
        Assert.Equal("registers: unsupported option -1\r\n" + Try("info registers"), await Hmp(c, "info registers -1"));
        Assert.Equal("registers: extraneous characters at the end of line\r\n" + Try("info registers"), await Hmp(c, "info registers 1 2"));

        // QMP-level errors, word for word.
        var bad = await Assert.ThrowsAsync<QmpException>(() => Hmp(c, "info registers", 5));
        Assert.Equal("Parameter 'cpu-index' expects a CPU number", bad.Description);
        bad = await Assert.ThrowsAsync<QmpException>(() => Hmp(c, "info registers", -1));
        Assert.Equal("Parameter 'cpu-index' expects a CPU number", bad.Description);
        bad = await Assert.ThrowsAsync<QmpException>(() => Hmp(c, "info registers", "1"));
        Assert.Equal("Invalid parameter type for 'cpu-index', expected: integer", bad.Description);
        bad = await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync("human-monitor-command", new JsonObject()));
        Assert.Equal("Parameter 'command-line' is missing", bad.Description);
        bad = await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = 5 }));
        Assert.Equal("Invalid parameter type for 'command-line', expected: string", bad.Description);
    }

    [Fact]
    public async Task Status_aliases_extra_arguments_and_help_read_as_in_QEMU()
    {
        await using var t = TestVm.Counting();
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        Assert.Equal("VM status: paused (prelaunch)\r\n", await Hmp(c, "  info   status  "));
        Assert.Equal("", await Hmp(c, "c"));
        Assert.Equal("VM status: running\r\n", await Hmp(c, "info status"));
        Assert.Equal("", await Hmp(c, "s"));
        Assert.Equal("VM status: paused\r\n", await Hmp(c, "info status"));
        Assert.Equal("status: extraneous characters at the end of line\r\n" + Try("info status"), await Hmp(c, "info status extra"));
        Assert.Equal("stop|s: extraneous characters at the end of line\r\n" + Try("stop"), await Hmp(c, "stop extra"));
        Assert.Equal("VM status: paused\r\n", await Hmp(c, "info status")); // the refused stop did nothing
        Assert.Equal("stop|s  -- stop emulation\r\n", await Hmp(c, "help stop"));
        Assert.Equal("cont|c  -- resume emulation\r\n", await Hmp(c, "help c"));
        Assert.Equal("info status  -- show the current VM status (running|paused)\r\n", await Hmp(c, "help info status"));
        Assert.Equal("unknown command: 'info frob'\r\n", await Hmp(c, "help info frob"));
        Assert.Equal("unknown command: 'frob'\r\n", await Hmp(c, "help frob"));
    }
}
