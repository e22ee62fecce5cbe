using SharpVmm.Devices.Net;
using SharpVmm.Devices.Net.Tap;

namespace SharpVmm.Devices.Tests.Net;

/// <summary>Creates tap interfaces without addresses and never brings them up: no traffic leaves the test.</summary>
public sealed class TapBackendTests
{
    private static string RandomName() => "svmt" + Random.Shared.Next(0, 1 << 24).ToString("x6", System.Globalization.CultureInfo.InvariantCulture);

    [NeedsFact(Need.Tap)]
    public void A_tap_exists_while_the_backend_lives_and_is_gone_after_dispose()
    {
        string name = RandomName();
        using (var tap = new TapBackend(name))
        {
            Assert.Equal(name, tap.Name);
            Assert.True(Directory.Exists($"/sys/class/net/{name}"));
            Assert.Equal("0x1002", File.ReadAllText($"/sys/class/net/{name}/tun_flags").Trim()); // IFF_TAP | IFF_NO_PI
            tap.Start(_ => { });
            tap.Send(new byte[60]); // the interface is down: the kernel refuses, we count and carry on
        }
        Assert.False(Directory.Exists($"/sys/class/net/{name}"));
    }

    [NeedsFact(Need.Tap)]
    public void A_name_template_is_resolved_by_the_kernel()
    {
        using var tap = new TapBackend("svmt%d");
        Assert.Matches("^svmt[0-9]+$", tap.Name);
        Assert.True(Directory.Exists($"/sys/class/net/{tap.Name}"));
    }

    [NeedsFact(Need.Tap)]
    public void A_tap_in_use_is_refused_with_a_clear_message()
    {
        string name = RandomName();
        using var first = new TapBackend(name);
        var e = Assert.Throws<NetBackendException>(() => new TapBackend(name));
        Assert.Contains("in use", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a-name-longer-than-15")]
    [InlineData("bad/name")]
    [InlineData("bad name")]
    [InlineData("..")]
    public void Bad_interface_names_are_refused_before_touching_the_kernel(string name)
    {
        var e = Assert.Throws<NetBackendException>(() => new TapBackend(name));
        Assert.Contains("not a valid interface name", e.Message);
    }
}
