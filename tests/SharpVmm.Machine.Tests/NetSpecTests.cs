using SharpVmm.Core;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

public sealed class NetSpecTests
{
    [Fact]
    public void Tap_and_user_specs_parse_with_and_without_a_mac()
    {
        Assert.Equal(new NetSpec(NetBackendKind.Tap, "tap0"), NetSpec.Parse("tap,ifname=tap0"));
        var user = NetSpec.Parse("user,mac=52:54:00:aa:bb:cc");
        Assert.Equal(NetBackendKind.User, user.Kind);
        Assert.Equal("52:54:00:aa:bb:cc", user.Mac.ToString());
        Assert.Equal("tap,ifname=t1,mac=02:00:00:00:00:01", NetSpec.Parse("tap,ifname=t1,mac=02:00:00:00:00:01").ToString());
        Assert.Equal("52:54:00:12:34:56", NetSpec.DefaultMac(0).ToString());
        Assert.Equal("52:54:00:12:34:57", NetSpec.DefaultMac(1).ToString());
    }

    [Theory]
    [InlineData("", "needs a backend")]
    [InlineData("bridge", "is not known")]
    [InlineData("tap", "needs its interface name")]
    [InlineData("tap,ifname=", "not a valid interface name")]
    [InlineData("tap,ifname=much-too-long-name", "not a valid interface name")]
    [InlineData("user,ifname=tap0", "ifname= is for tap")]
    [InlineData("user,mac=01:00:00:00:00:01", "multicast")]
    [InlineData("user,mac=zz", "not a MAC address")]
    [InlineData("user,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02", "given twice")]
    [InlineData("user,speed=10", "not understood")]
    public void Bad_specs_fail_with_a_message_that_says_what_to_write(string text, string expected)
        => Assert.Contains(expected, Assert.Throws<ConfigurationException>(() => NetSpec.Parse(text)).Message);

    [Fact]
    public void Nics_need_a_kernel_distinct_macs_and_distinct_taps_and_count_toward_the_virtio_limit()
    {
        string kernel = Path.GetTempFileName();
        try
        {
            var ok = new VmConfig { Kernel = kernel, Nets = [NetSpec.Parse("user"), NetSpec.Parse("tap,ifname=t0")] };
            ok.Validate();
            Assert.Contains("--net", Assert.Throws<ConfigurationException>(() => (ok with { Kernel = null, Flat = new FlatImageSpec(kernel, 0x1000, SharpVmm.Boot.Flat.EntryMode.Real) }).Validate()).Message);
            Assert.Contains("MAC", Assert.Throws<ConfigurationException>(() => (ok with { Nets = [NetSpec.Parse("user"), NetSpec.Parse("user,mac=52:54:00:12:34:56")] }).Validate()).Message);
            Assert.Contains("tap t0", Assert.Throws<ConfigurationException>(() => (ok with { Nets = [NetSpec.Parse("tap,ifname=t0"), NetSpec.Parse("tap,ifname=t0")] }).Validate()).Message);
            Assert.Contains("at most", Assert.Throws<ConfigurationException>(() => (ok with { Rng = true, Nets = [.. Enumerable.Range(0, 8).Select(i => NetSpec.Parse($"tap,ifname=t{i}"))] }).Validate()).Message);
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
