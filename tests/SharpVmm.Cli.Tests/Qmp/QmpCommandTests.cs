using System.CommandLine;
using System.Text.Json.Nodes;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Cli.Qmp;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Cli.Tests.Qmp;

/// <summary><c>sharpvmm qmp</c> against a live server on an emu guest that counts in a loop.</summary>
public sealed class QmpCommandTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-qmpcli-").FullName;
    private VirtualMachine? _vm;
    private QmpServer? _server;

    private string Socket => Path.Combine(_dir, "qmp.sock");

    public Task InitializeAsync()
    {
        string bin = Path.Combine(_dir, "guest.bin");
        File.WriteAllBytes(bin, GuestCode.Assemble(64, GuestCode.CountingLoop(0x8000), 0x100000));
        _vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 16UL << 20,
            Flat = new FlatImageSpec(bin, 0x100000, EntryMode.Long),
            Serial = "none",
        });
        _server = QmpServer.Start(_vm, Socket);
        _vm.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _vm?.Stop();
        if (_server is not null) await _server.DisposeAsync();
        _vm?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var root = new RootCommand("sharpvmm");
        root.Subcommands.Add(QmpCommand.Create());
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Prints_the_return_value_as_JSON_and_exits_0()
    {
        var (code, output, error) = Invoke("qmp", Socket, "query-status");
        Assert.True(code == 0, error);
        var status = JsonNode.Parse(output)!;
        Assert.Equal("running", status["status"]!.GetValue<string>());
        Assert.True(status["running"]!.GetValue<bool>());
        Assert.Equal("", error);
    }

    [Fact]
    public void Passes_arguments_and_drives_the_VM()
    {
        Assert.Equal(0, Invoke("qmp", "unix:" + Socket, "stop").Code);
        Assert.Equal(Machine.Lifecycle.VmState.Paused, _vm!.State);
        var (code, output, _) = Invoke("qmp", Socket, "human-monitor-command", "{\"command-line\": \"info status\"}");
        Assert.Equal(0, code);
        Assert.Equal("VM status: paused\r\n", JsonNode.Parse(output)!.GetValue<string>());
        Assert.Equal("{}", Invoke("qmp", Socket, "cont").Out.Trim());
        Assert.Equal(Machine.Lifecycle.VmState.Running, _vm.State);
    }

    [Fact]
    public void An_error_reply_goes_to_stderr_on_one_line_with_exit_code_1()
    {
        var (code, output, error) = Invoke("qmp", Socket, "nope");
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Equal("CommandNotFound: The command nope has not been found" + Environment.NewLine, error);
        (code, _, error) = Invoke("qmp", Socket, "query-status", "{\"x\": 1}");
        Assert.Equal(1, code);
        Assert.Equal("GenericError: Parameter 'x' is unexpected", error.TrimEnd());
    }

    [Fact]
    public void Bad_arguments_and_unreachable_servers_are_explained()
    {
        var (code, _, error) = Invoke("qmp", Socket, "query-status", "{not json");
        Assert.Equal(2, code);
        Assert.StartsWith("sharpvmm: the arguments are not valid JSON", error);
        (code, _, error) = Invoke("qmp", Socket, "query-status", "[1]");
        Assert.Equal(2, code);
        Assert.Contains("must be a JSON object", error);
        (code, _, error) = Invoke("qmp", Path.Combine(_dir, "nobody.sock"), "query-status");
        Assert.Equal(1, code);
        Assert.StartsWith("sharpvmm: cannot connect to QMP at ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void A_server_that_never_greets_times_out()
    {
        string mute = Path.Combine(_dir, "mute.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(mute));
        listener.Listen(1); // connections queue in the backlog and are never answered
        var (code, _, error) = Invoke("qmp", mute, "query-status", "--timeout", "0.5");
        Assert.Equal(1, code);
        Assert.Equal($"sharpvmm: no answer from the QMP server at {mute} within 0.5 s", error.TrimEnd());
    }
}
