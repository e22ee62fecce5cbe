using System.Text.Json.Nodes;
using SharpVmm.Monitor.Client;

namespace SharpVmm.EndToEnd;

/// <summary>
/// QMP system_powerdown presses the ACPI power button (Generic Event Device → PNP0C0C), and the Debian guest acts on it:
/// button.ko reports KEY_POWER, busybox acpid runs the init's handler, which prints a marker and powers off. The VM
/// ends the way QEMU reports a guest's own power-off.
/// </summary>
public sealed class PowerButtonTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [LinuxGuestFact]
    public async Task System_powerdown_is_a_button_press_the_guest_answers_by_powering_off()
    {
        string qmp = "unix:" + _dir["qmp.sock"];
        using var g = new GuestVmProcess("power-button", "echo SHARPVMM-READY; sleep 600", "--qmp", qmp);
        g.WaitFor("SHARPVMM-READY", TimeSpan.FromSeconds(1500));
        await using var c = await QmpClient.ConnectAndNegotiateAsync(qmp);

        // Pressed while the VM is paused, the press waits for the guest: nothing happens until cont.
        await c.ExecuteAsync("stop");
        await c.ExecuteAsync("system_powerdown");
        Assert.Equal("STOP", (await NextEvent(c))["event"]!.GetValue<string>());
        Assert.Equal("POWERDOWN", (await NextEvent(c))["event"]!.GetValue<string>());
        Thread.Sleep(1000);
        Assert.DoesNotContain("SHARPVMM-POWER-BUTTON", g.Output);
        Assert.False(g.HasExited);

        await c.ExecuteAsync("cont");
        Assert.Equal("RESUME", (await NextEvent(c))["event"]!.GetValue<string>());
        var shutdown = await NextEvent(c);
        Assert.Equal("SHUTDOWN", shutdown["event"]!.GetValue<string>());
        Assert.Equal("{\"guest\":true,\"reason\":\"guest-shutdown\"}", shutdown["data"]!.ToJsonString());
        g.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.True(g.ExitCode == 0, $"exit {g.ExitCode}\n{g.Errors}\n{g.Tail()}");
        Assert.Contains("\nSHARPVMM-POWER-BUTTON\n", g.Output);
        Assert.DoesNotContain("SHARPVMM-EXIT", g.Output); // the command did not end by itself
    }

    private static async Task<JsonObject> NextEvent(QmpClient c)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        return await c.Events.ReadAsync(cts.Token);
    }
}
