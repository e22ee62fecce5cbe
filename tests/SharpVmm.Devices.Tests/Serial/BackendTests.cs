using System.Net.Sockets;
using System.Text;
using SharpVmm.Core;
using SharpVmm.Devices.Serial;

namespace SharpVmm.Devices.Tests.Serial;

public sealed class BackendTests
{
    [Fact]
    public void Unix_socket_backend_carries_both_directions_to_one_client()
    {
        string path = Path.Combine(Path.GetTempPath(), $"sharpvmm-{Guid.NewGuid():N}.sock");
        using var backend = new UnixSocketBackend(path);
        var received = new List<byte>();
        var got = new ManualResetEventSlim();
        backend.Start(d => { lock (received) { received.AddRange(d.ToArray()); got.Set(); } });
        backend.Write("dropped: nobody is connected"u8);
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(path));
        client.Send("ping"u8);
        Assert.True(got.Wait(TimeSpan.FromSeconds(10)));
        lock (received) Assert.Equal("ping", Encoding.ASCII.GetString([.. received]));
        // The acceptor may still be installing the client; keep writing until a byte arrives.
        var buf = new byte[64];
        client.ReceiveTimeout = 200;
        int n = 0;
        for (int i = 0; i < 50 && n == 0; i++)
        {
            backend.Write("pong"u8);
            try { n = client.Receive(buf); } catch (SocketException) { }
        }
        Assert.StartsWith("pong", Encoding.ASCII.GetString(buf, 0, n));
    }

    [Fact]
    public void File_backend_writes_what_the_guest_sends()
    {
        string path = Path.GetTempFileName();
        using (var b = new FileBackend(path)) b.Write("console text"u8);
        Assert.Equal("console text", File.ReadAllText(path));
        File.Delete(path);
    }

    [Theory]
    [InlineData("tcp:1234")]
    [InlineData("file:")]
    [InlineData("unix:")]
    [InlineData("")]
    public void Unknown_backend_specs_are_configuration_errors(string spec)
        => Assert.Throws<ConfigurationException>(() => CharBackends.Create(spec));

    [Fact]
    public void Backend_specs_parse_into_their_fields_without_opening_anything()
    {
        Assert.Equal(new CharBackendSpec(CharBackendKind.Unix, "/tmp/s.sock"), CharBackendSpec.Parse("unix:/tmp/s.sock"));
        Assert.Equal(new CharBackendSpec(CharBackendKind.File, "/no/such/dir/x.log"), CharBackendSpec.Parse("file:/no/such/dir/x.log"));
        Assert.Equal(new CharBackendSpec(CharBackendKind.Pty, null, "/tmp/l", true), CharBackendSpec.Parse("pty,logfile=/tmp/l,logappend=on"));
        Assert.Equal(new CharBackendSpec(CharBackendKind.Pty, LogFd: 7), CharBackendSpec.Parse("pty,logfd=7"));
        Assert.Equal(CharBackendKind.None, CharBackendSpec.Parse("none").Kind);
        Assert.Null(CharBackendSpec.Parse("none").Create());
        Assert.Throws<ConfigurationException>(() => CharBackendSpec.Parse("pty,logfd=7,logfile=/tmp/l"));
    }

    [Fact]
    public void A_file_backend_in_a_missing_directory_is_a_configuration_error()
        => Assert.Throws<ConfigurationException>(() => new FileBackend("/nonexistent-dir/x.log"));
}
