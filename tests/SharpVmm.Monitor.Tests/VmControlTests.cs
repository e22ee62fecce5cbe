using System.Text.Json.Nodes;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Tests;

/// <summary>The lifecycle commands on a live KVM guest, with QEMU's answers in every state and the events they cause.</summary>
public sealed class VmControlTests
{
    private static string Status(RawQmp q) => q.Execute("{\"execute\": \"query-status\"}")["return"]!["status"]!.GetValue<string>();

    private static string EventName(JsonObject e) => e["event"]!.GetValue<string>();

    [Fact]
    public async Task Stop_and_cont_pause_and_resume_a_running_guest()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        using var q = RawQmp.Negotiated(t.SocketPath);
        t.WaitForCount(1000);
        Assert.Equal("{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}}",
            QmpJson.Format(q.Execute("{\"execute\": \"query-status\"}")));

        q.Send("{\"execute\": \"stop\"}\n");
        var (reply, events) = q.ReadReply();
        Assert.Equal("{}", reply["return"]!.ToJsonString());
        var stop = Assert.Single(events);
        Assert.Equal("STOP", EventName(stop));
        Assert.Null(stop["data"]);
        Assert.True(stop["timestamp"]!["seconds"]!.GetValue<long>() > 1_600_000_000);
        Assert.InRange(stop["timestamp"]!["microseconds"]!.GetValue<long>(), 0, 999_999);

        ulong frozen = t.Count;
        Thread.Sleep(300);
        Assert.Equal(frozen, t.Count);
        Assert.Equal("paused", Status(q));
        Assert.Equal(VmState.Paused, t.Vm.State);

        // stop twice: QEMU says OK and sends no second STOP.
        Assert.Equal("{}", q.Execute("{\"execute\": \"stop\"}")["return"]!.ToJsonString());
        Assert.True(q.IsQuiet(200));

        q.Send("{\"execute\": \"cont\"}\n");
        (reply, events) = q.ReadReply();
        Assert.Equal("{}", reply["return"]!.ToJsonString());
        Assert.Equal("RESUME", EventName(Assert.Single(events)));
        t.WaitForCount(frozen + 1000);

        // cont on a running VM: OK, no event.
        Assert.Equal("{}", q.Execute("{\"execute\": \"cont\"}")["return"]!.ToJsonString());
        Assert.True(q.IsQuiet(200));
        Assert.Equal("running", Status(q));
    }

    [Fact]
    public async Task Cont_starts_a_VM_still_in_prelaunch_and_stop_leaves_it_there()
    {
        await using var t = TestVm.Counting();
        using var q = RawQmp.Negotiated(t.SocketPath);
        Assert.Equal("prelaunch", Status(q));
        Assert.Equal("{}", q.Execute("{\"execute\": \"stop\"}")["return"]!.ToJsonString());
        Assert.Equal("prelaunch", Status(q));
        Assert.Equal(0UL, t.Count);
        q.Send("{\"execute\": \"cont\"}\n");
        var (_, events) = q.ReadReply();
        Assert.Equal("RESUME", EventName(Assert.Single(events)));
        t.WaitForCount(100);
        Assert.Equal("running", Status(q));
    }

    [Fact]
    public async Task System_reset_restarts_the_guest_and_keeps_a_paused_VM_paused()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        using var q = RawQmp.Negotiated(t.SocketPath);
        t.WaitForCount(1000);
        q.Execute("{\"execute\": \"stop\"}");
        var regs = q.Execute("{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info registers\"}}")["return"]!.GetValue<string>();
        Assert.Contains("RBX=0000000000008000", regs);

        q.Send("{\"execute\": \"system_reset\"}\n");
        var (reply, events) = q.ReadReply();
        Assert.Equal("{}", reply["return"]!.ToJsonString());
        var reset = Assert.Single(events);
        Assert.Equal("RESET", EventName(reset));
        Assert.Equal("{\"guest\":false,\"reason\":\"host-qmp-system-reset\"}", reset["data"]!.ToJsonString());
        Assert.Equal("paused", Status(q));

        // The payload is reloaded: the vCPU is back at the entry point, before "mov rbx, Counter".
        var state = t.Vm.GetVcpuState(0);
        Assert.Equal(TestVm.Entry, state.Rip);
        regs = q.Execute("{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info registers\"}}")["return"]!.GetValue<string>();
        Assert.Contains($"RIP={TestVm.Entry:x16}", regs);

        q.Execute("{\"execute\": \"cont\"}");
        ulong c = t.Count;
        t.WaitForCount(c + 1000);
        q.Send("{\"execute\": \"system_reset\"}\n");
        (_, events) = q.ReadReply();
        Assert.Equal("RESET", EventName(Assert.Single(events)));
        Assert.Equal("running", Status(q));
    }

    [Fact]
    public async Task System_powerdown_emits_POWERDOWN_and_presses_the_button_but_leaves_the_rest_to_the_guest()
    {
        int presses = 0;
        await using var t = TestVm.Counting(options: new QmpServerOptions { PowerButton = () => Interlocked.Increment(ref presses) });
        t.Vm.Start();
        using var q = RawQmp.Negotiated(t.SocketPath);
        q.Send("{\"execute\": \"system_powerdown\"}\n");
        var (reply, events) = q.ReadReply();
        Assert.Equal("{}", reply["return"]!.ToJsonString());
        Assert.Equal("POWERDOWN", EventName(Assert.Single(events)));
        Assert.Null(events[0]["data"]);
        Assert.Equal(1, Volatile.Read(ref presses));
        // This guest ignores its button, as a guest without ACPI support would under QEMU: it goes on running.
        Assert.True(q.IsQuiet(300));
        Assert.Equal("running", Status(q));
        ulong c = t.Count;
        t.WaitForCount(c + 1000);
    }

    [Fact]
    public async Task A_machine_without_a_power_button_only_reports_POWERDOWN()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        using var q = RawQmp.Negotiated(t.SocketPath);
        q.Send("{\"execute\": \"system_powerdown\"}\n");
        var (_, events) = q.ReadReply();
        Assert.Equal("POWERDOWN", EventName(Assert.Single(events)));
        Assert.True(q.IsQuiet(300));
        Assert.Equal("running", Status(q));
    }

    [Fact]
    public async Task A_VM_that_shut_down_answers_like_QEMU()
    {
        await using var t = TestVm.Halting();
        using var q = RawQmp.Negotiated(t.SocketPath);
        t.Vm.Start();
        await t.Vm.Exited.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("{\"return\": {\"status\": \"shutdown\", \"singlestep\": false, \"running\": false}}",
            QmpJson.Format(q.Execute("{\"execute\": \"query-status\"}")));
        var cont = q.Execute("{\"execute\": \"cont\"}");
        Assert.Equal("GenericError", cont["error"]!["class"]!.GetValue<string>());
        Assert.StartsWith("Resetting the Virtual Machine is required", cont["error"]!["desc"]!.GetValue<string>());
        Assert.Equal("GenericError", q.Execute("{\"execute\": \"system_powerdown\"}")["error"]!["class"]!.GetValue<string>());
        Assert.Equal("{}", q.Execute("{\"execute\": \"stop\"}")["return"]!.ToJsonString());
    }

    [Fact]
    public async Task Under_no_shutdown_a_VM_the_guest_stopped_is_reset_to_prelaunch_and_boots_again()
    {
        await using var t = TestVm.Halting();
        t.Vm.KeepAfterGuestStop = true; // QEMU's -no-shutdown
        using var q = RawQmp.Negotiated(t.SocketPath);
        t.Vm.Start();
        var shutdown = q.ReadObject();
        if (EventName(shutdown) == "RESUME") shutdown = q.ReadObject();
        Assert.Equal("{\"guest\":true,\"reason\":\"guest-shutdown\"}", shutdown["data"]!.ToJsonString());
        Assert.Equal("shutdown", Status(q));
        Assert.True(t.Vm.CanReset);
        var cont = q.Execute("{\"execute\": \"cont\"}");
        Assert.Equal("Resetting the Virtual Machine is required", cont["error"]!["desc"]!.GetValue<string>());

        // libvirt's reboot of a guest that powered off: system_reset, then cont.
        q.Send("{\"execute\": \"system_reset\"}\n");
        var (reply, events) = q.ReadReply();
        Assert.Equal("{}", reply["return"]!.ToJsonString());
        Assert.Equal("{\"guest\":false,\"reason\":\"host-qmp-system-reset\"}", Assert.Single(events)["data"]!.ToJsonString());
        Assert.Equal("prelaunch", Status(q));
        Assert.Equal(VmState.Created, t.Vm.State);

        q.Send("{\"execute\": \"cont\"}\n");
        (_, events) = q.ReadReply();
        var next = events.Count > 0 ? events[0] : q.ReadObject();
        Assert.Equal("RESUME", EventName(next));
        // The payload ran again from its entry and halted again: a second SHUTDOWN.
        var again = events.Count > 1 ? events[1] : q.ReadObject();
        Assert.Equal("SHUTDOWN", EventName(again));
        Assert.Equal("shutdown", Status(q));

        // A host stop ends it for good.
        t.Vm.Stop();
        Assert.False(t.Vm.CanReset);
        Assert.Equal("GenericError", q.Execute("{\"execute\": \"system_reset\"}")["error"]!["class"]!.GetValue<string>());
    }

    [Fact]
    public async Task Under_no_shutdown_a_guest_panic_pauses_in_guest_panicked_without_SHUTDOWN_as_QEMU()
    {
        await using var t = TestVm.Counting();
        t.Vm.KeepAfterGuestStop = true;
        t.Vm.Start();
        using var q = RawQmp.Negotiated(t.SocketPath);
        t.WaitForCount(100);
        t.Vm.StopWith(VmExitResult.GuestPanic("reported through pvpanic"));
        var panicked = q.ReadObject();
        Assert.Equal("GUEST_PANICKED", EventName(panicked));
        Assert.Equal("{\"action\":\"pause\"}", panicked["data"]!.ToJsonString());
        Assert.Equal("STOP", EventName(q.ReadObject()));
        Assert.True(q.IsQuiet(300)); // no SHUTDOWN: libvirt applies the domain's on_crash
        Assert.Equal("guest-panicked", Status(q));
        q.Execute("{\"execute\": \"system_reset\"}");
        Assert.Equal("prelaunch", Status(q));
    }

    [Fact]
    public async Task A_guest_that_stops_itself_is_reported_as_guest_shutdown()
    {
        await using var t = TestVm.Halting();
        using var q = RawQmp.Negotiated(t.SocketPath);
        t.Vm.Start();
        // The VM reports its start and a guest that halts at once from different threads, so RESUME may be
        // overtaken by the stop; once stopped, a late RESUME is not sent.
        var shutdown = q.ReadObject();
        if (EventName(shutdown) == "RESUME") shutdown = q.ReadObject();
        Assert.Equal("SHUTDOWN", EventName(shutdown));
        Assert.Equal("{\"guest\":true,\"reason\":\"guest-shutdown\"}", shutdown["data"]!.ToJsonString());
        Assert.Equal("shutdown", Status(q));
        Assert.True(q.IsQuiet(200));
    }

    [Fact]
    public async Task Quit_stops_the_VM_sends_SHUTDOWN_to_everyone_and_tells_the_host()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        int quitCalls = 0;
        t.Server.QuitRequested += () => Interlocked.Increment(ref quitCalls);
        using var watcher = RawQmp.Negotiated(t.SocketPath);
        using var q = RawQmp.Negotiated(t.SocketPath);
        q.Send("{\"execute\": \"quit\", \"id\": \"bye\"}\n");
        var (reply, events) = q.ReadReply();
        Assert.Equal("{\"return\":{},\"id\":\"bye\"}", reply.ToJsonString());
        var shutdown = Assert.Single(events); // as QEMU 7.2: SHUTDOWN before the reply
        Assert.Equal("{\"guest\":false,\"reason\":\"host-qmp-quit\"}", shutdown["data"]!.ToJsonString());
        await t.Server.QuitTask.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, Volatile.Read(ref quitCalls));
        Assert.Equal(VmStopReason.HostRequest, (await t.Vm.Exited.WaitAsync(TimeSpan.FromSeconds(10))).Reason);
        var seen = watcher.ReadObject();
        Assert.Equal("SHUTDOWN", EventName(seen));
        Assert.Equal("host-qmp-quit", seen["data"]!["reason"]!.GetValue<string>());
        Assert.True(watcher.IsQuiet(200));
    }

    [Fact]
    public async Task Every_negotiated_client_gets_events_and_unnegotiated_ones_get_none()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        using var a = RawQmp.Negotiated(t.SocketPath);
        using var b = RawQmp.Negotiated(t.SocketPath);
        using var pending = new RawQmp(t.SocketPath);
        pending.ReadLine();
        a.Execute("{\"execute\": \"stop\"}");
        Assert.Equal("STOP", EventName(b.ReadObject()));
        b.Send("{\"execute\": \"cont\"}\n");
        var (_, bEvents) = b.ReadReply();
        Assert.Equal("RESUME", EventName(Assert.Single(bEvents)));
        Assert.Equal("RESUME", EventName(a.ReadObject()));
        Assert.True(pending.IsQuiet(300));
        Assert.Equal(3, t.Server.ClientCount);
    }

    [Fact]
    public async Task Clients_that_vanish_mid_command_do_not_disturb_the_server()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        using var watcher = RawQmp.Negotiated(t.SocketPath);
        using (var rude = RawQmp.Negotiated(t.SocketPath))
            rude.Send("{\"execute\": \"stop\"}\n"); // and gone before the reply
        Assert.Equal("STOP", EventName(watcher.ReadObject()));
        using (var half = RawQmp.Negotiated(t.SocketPath))
            half.Send("{\"execute\": \"co");
        using (var silent = new RawQmp(t.SocketPath)) { }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (t.Server.ClientCount > 1 && DateTime.UtcNow < deadline) Thread.Sleep(10);
        Assert.Equal(1, t.Server.ClientCount);
        Assert.Equal("paused", Status(watcher));
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        await c.ExecuteAsync("cont");
        Assert.Equal("running", (await c.ExecuteAsync("query-status"))!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Query_cpus_fast_reports_the_vCPU_threads()
    {
        await using var t = TestVm.Counting();
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        t.Vm.Start();
        t.WaitForCount(10);
        var cpu = Assert.Single((JsonArray)(await c.ExecuteAsync("query-cpus-fast"))!)!.AsObject();
        Assert.Equal(0, cpu["cpu-index"]!.GetValue<int>());
        Assert.Equal("x86_64", cpu["target"]!.GetValue<string>());
        Assert.Equal("/machine/cpu[0]", cpu["qom-path"]!.GetValue<string>());
        Assert.Equal("{\"core-id\":0,\"thread-id\":0,\"socket-id\":0}", cpu["props"]!.ToJsonString());
        int tid = cpu["thread-id"]!.GetValue<int>();
        Assert.Equal("vcpu0", File.ReadAllText($"/proc/self/task/{tid}/comm").Trim());
    }
}
