using System.Net.Sockets;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Tests;

/// <summary>Listening: TCP on loopback, socket files (stale, busy, foreign, cleaned up), many clients.</summary>
public sealed class ServerTests
{
    [Fact]
    public async Task Serves_on_loopback_TCP_with_a_picked_port()
    {
        await using var t = TestVm.Counting();
        await using var tcp = QmpServer.Start(t.Vm, "tcp:127.0.0.1:0");
        Assert.StartsWith("tcp:127.0.0.1:", tcp.Address.ToString());
        Assert.DoesNotContain("tcp:127.0.0.1:0", tcp.Address.ToString());
        await using var c = await QmpClient.ConnectAndNegotiateAsync(tcp.Address.ToString());
        Assert.Equal("prelaunch", (await c.ExecuteAsync("query-status"))!["status"]!.GetValue<string>());
        Assert.Throws<QmpAddressException>(() => QmpServer.Start(t.Vm, "tcp:0.0.0.0:0"));
    }

    [Fact]
    public async Task Socket_files_stale_ones_are_replaced_busy_or_foreign_ones_refused_and_ours_removed()
    {
        await using var t = TestVm.Counting();
        string dir = Path.GetDirectoryName(t.SocketPath)!;

        var ex = Assert.Throws<QmpAddressException>(() => QmpServer.Start(t.Vm, t.SocketPath));
        Assert.Contains("another process is serving it", ex.Message);

        string data = Path.Combine(dir, "notes.txt");
        File.WriteAllText(data, "keep me");
        ex = Assert.Throws<QmpAddressException>(() => QmpServer.Start(t.Vm, data));
        Assert.Contains("regular file", ex.Message);
        Assert.Equal("keep me", File.ReadAllText(data));

        string stale = Path.Combine(dir, "stale.sock");
        // Bound but not listening: connecting is refused, as with the file a crashed process leaves. (Closing a
        // .NET socket would remove its file, so it stays open until the end.)
        using var leftover = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        leftover.Bind(new UnixDomainSocketEndPoint(stale));
        Assert.True(File.Exists(stale));
        var server = QmpServer.Start(t.Vm, "unix:" + stale);
        await using (var c = await QmpClient.ConnectAndNegotiateAsync(stale))
            Assert.NotNull(await c.ExecuteAsync("query-version"));
        await server.DisposeAsync();
        Assert.False(File.Exists(stale));
    }

    [Fact]
    public async Task Many_clients_run_commands_at_once()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        var clients = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => QmpClient.ConnectAndNegotiateAsync(t.SocketPath)));
        try
        {
            var results = await Task.WhenAll(clients.Select(async (c, i) =>
            {
                for (int k = 0; k < 5; k++)
                {
                    await c.ExecuteAsync(i % 2 == 0 ? "stop" : "cont");
                    await c.ExecuteAsync("query-status");
                }
                return await c.ExecuteAsync("query-version");
            }));
            Assert.All(results, r => Assert.Equal(7, r!["qemu"]!["major"]!.GetValue<int>()));
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Closing_the_server_delivers_queued_messages_and_disconnects_clients()
    {
        await using var t = TestVm.Counting();
        t.Vm.Start();
        using var q = RawQmp.Negotiated(t.SocketPath);
        t.Vm.Stop();
        await t.Server.DisposeAsync();
        Assert.Equal("SHUTDOWN", q.ReadObject()["event"]!.GetValue<string>());
        Assert.Throws<EndOfStreamException>(() => q.ReadLine());
        Assert.False(File.Exists(t.SocketPath));
    }
}
