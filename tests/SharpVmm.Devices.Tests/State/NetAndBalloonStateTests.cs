using SharpVmm.Core.State;
using SharpVmm.Devices.Net;
using SharpVmm.Devices.Tests.Virtio.Net;
using SharpVmm.Devices.Virtio.Balloon;
using SharpVmm.Devices.Virtio.Net;
using SharpVmm.Memory;

namespace SharpVmm.Devices.Tests.State;

public sealed class NetAndBalloonStateTests
{
    private static byte[] Save(IStateful s)
    {
        var w = new StateWriter();
        s.SaveState(w);
        return w.ToArray();
    }

    [Fact]
    public void A_nic_restores_its_link_state_and_refuses_another_mac()
    {
        var mac = MacAddress.Parse("52:54:00:ab:cd:ef");
        using var a = new VirtioNet(new VirtioNetTests.Backend(), mac) { LinkUp = false };
        byte[] saved = Save(a);

        using var b = new VirtioNet(new VirtioNetTests.Backend(), mac);
        Assert.True(b.LinkUp);
        b.LoadState(new StateReader(saved), b.StateVersion);
        Assert.False(b.LinkUp);

        using var other = new VirtioNet(new VirtioNetTests.Backend(), MacAddress.Parse("52:54:00:00:00:01"));
        var ex = Assert.Throws<StateFormatException>(() => other.LoadState(new StateReader(saved), other.StateVersion));
        Assert.Contains("MAC", ex.Message);
        Assert.Throws<StateFormatException>(() => b.LoadState(new StateReader(saved.AsMemory(0, 3)), b.StateVersion));
    }

    [Fact]
    public void A_balloon_restores_its_target_and_refuses_another_ram_size()
    {
        using var ram = GuestMemory.Create(64UL << 20);
        var a = new VirtioBalloon(ram);
        a.SetTargetPages(1234);
        byte[] saved = Save(a);

        var b = new VirtioBalloon(ram);
        b.LoadState(new StateReader(saved), b.StateVersion);
        Assert.Equal(1234u, b.TargetPages);
        Assert.Equal(0UL, b.InflatedPages);

        using var bigger = GuestMemory.Create(128UL << 20);
        var c = new VirtioBalloon(bigger);
        var ex = Assert.Throws<StateFormatException>(() => c.LoadState(new StateReader(saved), c.StateVersion));
        Assert.Contains("--memory", ex.Message);
        for (int cut = 0; cut < saved.Length; cut++)
            Assert.Throws<StateFormatException>(() => new VirtioBalloon(ram).LoadState(new StateReader(saved.AsMemory(0, cut)), 1));
    }
}
