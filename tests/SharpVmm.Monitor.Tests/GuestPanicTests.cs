using System.Text.Json.Nodes;
using SharpVmm.Machine.Lifecycle;

namespace SharpVmm.Monitor.Tests;

/// <summary>A guest kernel panic as QEMU reports it with its default panic action (shutdown).</summary>
public sealed class GuestPanicTests
{
    private static string EventName(JsonObject e) => e["event"]!.GetValue<string>();

    [Fact]
    public async Task A_panic_is_guest_panicked_with_GUEST_PANICKED_STOP_and_SHUTDOWN_guest_panic()
    {
        await using var t = TestVm.Counting();
        using var q = RawQmp.Negotiated(t.SocketPath);
        t.Vm.Start();
        Assert.Equal("RESUME", EventName(q.ReadObject()));
        t.WaitForCount(100);
        // What the builder's panic watcher does when the guest's console shows the panic banner.
        t.Vm.StopWith(VmExitResult.GuestPanic("Kernel panic - not syncing: Attempted to kill init!"));
        await t.Vm.Exited;

        var panicked = q.ReadObject();
        Assert.Equal("GUEST_PANICKED", EventName(panicked));
        Assert.Equal("{\"action\":\"poweroff\"}", panicked["data"]!.ToJsonString());
        Assert.Equal("STOP", EventName(q.ReadObject()));
        var shutdown = q.ReadObject();
        Assert.Equal("SHUTDOWN", EventName(shutdown));
        Assert.Equal("{\"guest\":true,\"reason\":\"guest-panic\"}", shutdown["data"]!.ToJsonString());

        var status = q.Execute("{\"execute\": \"query-status\"}")["return"]!;
        Assert.Equal("guest-panicked", status["status"]!.GetValue<string>());
        Assert.False(status["running"]!.GetValue<bool>());
        var hmp = q.Execute("{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info status\"}}");
        Assert.Equal("VM status: paused (guest-panicked)\r\n", hmp["return"]!.GetValue<string>());
        Assert.True(q.IsQuiet(200)); // nothing more: one panic, one shutdown
    }
}
