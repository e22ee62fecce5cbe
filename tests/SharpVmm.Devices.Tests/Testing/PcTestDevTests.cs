using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Testing;

namespace SharpVmm.Devices.Tests.Testing;

public sealed class PcTestDevTests
{
    private sealed class Irqs : IIrqRouter
    {
        public readonly List<(int Gsi, bool Level)> Log = [];
        public void SetIrq(int gsi, bool level) => Log.Add((gsi, level));
    }

    [Fact]
    public void The_data_register_keeps_each_byte_written_at_any_width_and_offset()
    {
        var t = new PcTestDev(null);
        t.Data.Write(0, [0x11, 0x22, 0x33, 0x44]);
        t.Data.Write(2, [0xAB]);
        Span<byte> v = stackalloc byte[4];
        t.Data.Read(0, v);
        Assert.Equal([0x11, 0x22, 0xAB, 0x44], v.ToArray());
        Span<byte> w = stackalloc byte[2];
        t.Data.Read(1, w);
        Assert.Equal([0x22, 0xAB], w.ToArray());
    }

    [Fact]
    public void The_irq_window_sets_the_isa_line_of_its_port()
    {
        var irqs = new Irqs();
        var t = new PcTestDev(irqs);
        t.Irq.Write(10, [1]);
        t.Irq.Write(10, [0]);
        t.Irq.Write(4, [7]);
        Assert.Equal([(10, true), (10, false), (4, true)], irqs.Log);
    }

    [Fact]
    public void Flush_page_takes_32_bit_writes_and_iomem_is_scratch_memory()
    {
        var t = new PcTestDev(null);
        t.Flush.Write(0, [0, 0x10, 0, 0]);
        t.Flush.Write(0, [1]);  // QEMU accepts only 4-byte writes
        Assert.Equal(1, t.Flushes);
        t.Iomem.Write(0xFFF0, [9, 8, 7]);
        Span<byte> v = stackalloc byte[3];
        t.Iomem.Read(0xFFF0, v);
        Assert.Equal([9, 8, 7], v.ToArray());
    }
}
