using SharpVmm.Core;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

public sealed class DiskSpecTests
{
    [Fact]
    public void A_disk_has_an_io_thread_unless_told_otherwise()
    {
        Assert.True(DiskSpec.Parse("d.img").IoThread);
        Assert.False(DiskSpec.Parse("d.img,iothread=off").IoThread);
        var d = DiskSpec.Parse("d.qcow2,format=qcow2,readonly=on,iothread=on");
        Assert.Equal(("d.qcow2", "qcow2", true, true), (d.Path, d.Format, d.ReadOnly, d.IoThread));
        Assert.Throws<ConfigurationException>(() => DiskSpec.Parse("d.img,iothread=maybe"));
    }
}
