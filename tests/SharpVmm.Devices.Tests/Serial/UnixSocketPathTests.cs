using SharpVmm.Core;
using SharpVmm.Devices.Serial;

namespace SharpVmm.Devices.Tests.Serial;

/// <summary>Issue #16: a unix: serial/console backend replaces only a stale socket and says so when the path cannot be one.</summary>
public sealed class UnixSocketPathTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-sockpath-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void An_existing_regular_file_is_refused_and_kept()
    {
        string notes = Path.Combine(_dir, "notes.txt");
        File.WriteAllText(notes, "keep me");
        var e = Assert.Throws<ConfigurationException>(() => new UnixSocketBackend(notes));
        Assert.Contains("regular file", e.Message);
        Assert.Equal("keep me", File.ReadAllText(notes));
        File.WriteAllBytes(notes, []);
        Assert.Throws<ConfigurationException>(() => new UnixSocketBackend(notes));
        Assert.True(File.Exists(notes));
    }

    [Fact]
    public void A_path_longer_than_a_socket_address_holds_is_a_configuration_error()
    {
        var e = Assert.Throws<ConfigurationException>(() => new UnixSocketBackend(Path.Combine(_dir, new string('p', 120))));
        Assert.Contains("107 bytes", e.Message);
    }

    [Fact]
    public void A_stale_socket_is_replaced()
    {
        string path = Path.Combine(_dir, "s.sock");
        using (var first = new UnixSocketBackend(path)) { }
        // Dispose removed it; leave a stale socket file behind as a crashed run would.
        using var stale = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        stale.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        using var second = new UnixSocketBackend(path);
        Assert.True(File.Exists(path));
    }
}
