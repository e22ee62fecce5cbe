using SharpVmm.Core.Io;
using SharpVmm.Devices.Bus;

namespace SharpVmm.Devices.Tests.Bus;

public sealed class IoBusTests
{
    private sealed class Recorder : IIoDevice
    {
        public readonly List<(bool Write, ulong Offset, byte[] Data)> Log = [];
        public byte Fill = 0x5A;
        public void Read(ulong offset, Span<byte> data) { data.Fill(Fill); Log.Add((false, offset, data.ToArray())); }
        public void Write(ulong offset, ReadOnlySpan<byte> data) => Log.Add((true, offset, data.ToArray()));
    }

    private sealed class Throwing : IIoDevice
    {
        public void Read(ulong offset, Span<byte> data) => throw new InvalidOperationException("boom");
        public void Write(ulong offset, ReadOnlySpan<byte> data) => throw new InvalidOperationException("boom");
    }

    [Fact]
    public void Port_access_reaches_the_device_with_an_offset_relative_to_its_base()
    {
        var bus = new IoBus();
        var dev = new Recorder();
        bus.RegisterPort(0x3F8, 8, dev, "uart");
        bus.PioWrite(0x3FB, [0x80]);
        Span<byte> b = stackalloc byte[1];
        bus.PioRead(0x3F8, b);
        Assert.Equal(0x5A, b[0]);
        Assert.Equal((true, 3UL), (dev.Log[0].Write, dev.Log[0].Offset));
        Assert.Equal((false, 0UL), (dev.Log[1].Write, dev.Log[1].Offset));
    }

    [Fact]
    public void Mmio_access_finds_the_right_device_among_many()
    {
        var bus = new IoBus();
        var devs = new Recorder[20];
        for (int i = 0; i < devs.Length; i++)
        {
            devs[i] = new Recorder { Fill = (byte)i };
            bus.RegisterMmio(0xD000_0000UL + (ulong)i * 0x1000, 0x200, devs[i], $"dev{i}");
        }
        Span<byte> b = stackalloc byte[4];
        for (int i = devs.Length - 1; i >= 0; i--)
        {
            bus.MmioRead(0xD000_0000UL + (ulong)i * 0x1000 + 0x10, b);
            Assert.Equal((byte)i, b[0]);
            Assert.Equal(0x10UL, devs[i].Log[^1].Offset);
        }
    }

    [Fact]
    public void Overlapping_registrations_are_refused_when_the_machine_is_built()
    {
        var bus = new IoBus();
        bus.RegisterPort(0x60, 1, new Recorder(), "kbd");
        bus.RegisterMmio(0xFEC0_0000, 0x1000, new Recorder(), "ioapic");
        var e1 = Assert.Throws<BusConflictException>(() => bus.RegisterPort(0x5F, 2, new Recorder(), "x"));
        Assert.Contains("kbd", e1.Message);
        var e2 = Assert.Throws<BusConflictException>(() => bus.RegisterMmio(0xFEBF_F000, 0x1001, new Recorder(), "y"));
        Assert.Contains("ioapic", e2.Message);
        Assert.Throws<BusConflictException>(() => bus.RegisterPort(0xFFFF, 2, new Recorder(), "past the end"));
        Assert.Throws<BusConflictException>(() => bus.RegisterMmio(ulong.MaxValue - 1, 4, new Recorder(), "wraps"));
        // Adjacent is fine.
        bus.RegisterMmio(0xFEC0_1000, 0x1000, new Recorder(), "next");
    }

    [Fact]
    public void Unmapped_reads_see_all_ones_and_writes_vanish_and_are_counted()
    {
        var bus = new IoBus();
        IoBusFault? fault = null;
        bus.Fault = f => fault = f;
        Span<byte> b = stackalloc byte[4];
        bus.MmioRead(0x1_2345_0000, b);
        Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(b));
        bus.PioWrite(0x80, [1]);
        Assert.Equal(2, bus.UnmappedAccessCount);
        Assert.Null(fault);
    }

    [Fact]
    public void Under_the_stop_policy_an_unmapped_access_is_a_fault_naming_the_address()
    {
        var bus = new IoBus { UnmappedPolicy = UnmappedAccessPolicy.Stop };
        IoBusFault? fault = null;
        bus.Fault = f => fault = f;
        bus.MmioWrite(0x1_0000_0000, [1, 2, 3, 4]);
        Assert.NotNull(fault);
        Assert.Equal(IoBusFaultKind.UnmappedAccess, fault.Kind);
        Assert.Contains("0x100000000", fault.Message);
    }

    [Fact]
    public void An_access_running_past_the_end_of_a_window_is_not_given_to_the_device()
    {
        var bus = new IoBus();
        var dev = new Recorder();
        bus.RegisterMmio(0xD000_0000, 0x10, dev, "small");
        Span<byte> b = stackalloc byte[8];
        bus.MmioRead(0xD000_000C, b);
        Assert.Empty(dev.Log);
        Assert.Equal(1, bus.UnmappedAccessCount);
    }

    [Fact]
    public void A_port_write_wider_than_a_one_port_device_reaches_it_with_its_own_byte()
    {
        var bus = new IoBus();
        var dev = new Recorder();
        bus.RegisterPort(0xF4, 1, dev, "debug-exit");
        bus.PioWrite(0xF4, [0x21, 0x22, 0x23, 0x24]);
        Assert.Single(dev.Log);
        Assert.Equal((true, 0UL), (dev.Log[0].Write, dev.Log[0].Offset));
        Assert.Equal([0x21], dev.Log[0].Data);
    }

    [Fact]
    public void A_wide_port_access_is_split_between_the_devices_whose_windows_it_covers()
    {
        var bus = new IoBus();
        var a = new Recorder { Fill = 0x11 };
        var b = new Recorder { Fill = 0x22 };
        bus.RegisterPort(0x100, 2, a, "a");
        bus.RegisterPort(0x103, 1, b, "b");     // 0x102 belongs to nobody
        Span<byte> v = stackalloc byte[4];
        bus.PioRead(0x101, v);
        Assert.Equal([0x11, 0xFF, 0x22, 0xFF], v.ToArray());
        Assert.Equal((false, 1UL), (a.Log[0].Write, a.Log[0].Offset));
        Assert.Equal((false, 0UL), (b.Log[0].Write, b.Log[0].Offset));
        bus.PioWrite(0x101, [1, 2, 3, 4]);
        Assert.Equal([1], a.Log[1].Data);
        Assert.Equal([3], b.Log[1].Data);
        Assert.Equal(0, bus.UnmappedAccessCount);
    }

    [Fact]
    public void A_wide_access_at_the_last_port_stops_at_0xffff()
    {
        var bus = new IoBus();
        var dev = new Recorder();
        bus.RegisterPort(0xFFFF, 1, dev, "last");
        Span<byte> v = stackalloc byte[4];
        bus.PioRead(0xFFFF, v);
        Assert.Equal([0x5A, 0xFF, 0xFF, 0xFF], v.ToArray());
    }

    [Fact]
    public void A_throwing_device_becomes_a_fault_not_an_exception()
    {
        var bus = new IoBus();
        bus.RegisterPort(0x500, 1, new Throwing(), "broken");
        var faults = new List<IoBusFault>();
        bus.Fault = faults.Add;
        Span<byte> b = stackalloc byte[1];
        bus.PioRead(0x500, b);
        bus.PioWrite(0x500, [1]);
        Assert.Equal(0xFF, b[0]);
        Assert.Equal(2, faults.Count);
        Assert.All(faults, f => Assert.Equal(IoBusFaultKind.DeviceError, f.Kind));
        Assert.Contains("broken", faults[0].Message);
    }
}
