using System.Net.Sockets;
using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Monitor.Tests;

/// <summary>Issue #16: QMP serves a bounded number of clients, frees what a closed one held, replaces only stale sockets.</summary>
public sealed class ClientLimitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-qmp-limit-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private VirtualMachine Build()
    {
        var a = new Assembler(64);
        a.cli();
        a.hlt();
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), 0x100000);
        string bin = Path.Combine(_dir, "guest.bin");
        File.WriteAllBytes(bin, ms.ToArray());
        return VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 16UL << 20,
            Flat = new FlatImageSpec(bin, 0x100000, EntryMode.Long),
            Serial = "none",
        });
    }

    [Fact]
    public async Task Clients_beyond_the_limit_get_one_error_line_and_closed_ones_are_forgotten()
    {
        using var vm = Build();
        string sock = Path.Combine(_dir, "q.sock");
        await using var server = QmpServer.Start(vm, sock, new QmpServerOptions { MaxClients = 3 });
        var clients = new List<RawQmp>();
        for (int i = 0; i < 3; i++) clients.Add(RawQmp.Negotiated(sock));
        Assert.Equal(3, server.ClientCount);

        using (var extra = new RawQmp(sock))
        {
            var line = extra.ReadObject();
            Assert.Contains("too many QMP clients", line["error"]!["desc"]!.GetValue<string>());
            Assert.Throws<EndOfStreamException>(() => extra.ReadLine());
        }

        // A client that leaves frees its place.
        clients[0].Dispose();
        clients.RemoveAt(0);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (server.ClientCount != 2 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(2, server.ClientCount);
        using (var again = RawQmp.Negotiated(sock))
            Assert.Equal(3, server.ClientCount);

        // Many connect-and-close cycles leave nothing behind.
        for (int i = 0; i < 200; i++)
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(sock));
        }
        foreach (var c in clients) c.Dispose();
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (server.ClientCount != 0 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(0, server.ClientCount);
        Assert.Equal(0, server.SessionTaskCount);
    }

    [Fact]
    public void An_empty_regular_file_at_the_socket_path_is_not_replaced()
    {
        using var vm = Build();
        string empty = Path.Combine(_dir, "empty");
        File.WriteAllBytes(empty, []);
        var ex = Assert.Throws<QmpAddressException>(() => QmpServer.Start(vm, "unix:" + empty));
        Assert.Contains("regular file", ex.Message);
        Assert.True(File.Exists(empty));
    }
}
