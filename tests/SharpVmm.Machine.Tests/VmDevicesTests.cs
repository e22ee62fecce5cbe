using SharpVmm.Machine;

namespace SharpVmm.Machine.Tests;

public sealed class VmDevicesTests
{
    [Fact]
    public void Devices_are_found_by_id_and_type_in_build_order()
    {
        var d = new VmDevices();
        d.Add("a", "first");
        d.Add("b", 42);
        d.Add("c", "second");
        Assert.Equal(["first", "second"], d.OfType<string>().Select(x => x.Device));
        Assert.Equal(42, d.Find("b"));
        Assert.Null(d.Find("zz"));
        Assert.Throws<ArgumentException>(() => d.Add("a", "again"));
    }
}
