using System.Buffers.Binary;
using SharpVmm.Devices.Bus;
using SharpVmm.Devices.Pci;

namespace SharpVmm.Devices.Tests.Pci;

public sealed class EmptyPciBusTests
{
    [Fact]
    public void The_address_register_reads_back_and_every_configuration_read_is_all_ones()
    {
        var bus = new IoBus();
        bus.RegisterPort(EmptyPciBus.AddressPort, EmptyPciBus.WindowSize, new EmptyPciBus(), "pci");
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, 0x8000_0000);
        bus.PioWrite(0xCF8, v);
        v.Clear();
        bus.PioRead(0xCF8, v);
        Assert.Equal(0x8000_0000u, BinaryPrimitives.ReadUInt32LittleEndian(v));
        bus.PioRead(0xCFC, v);
        Assert.Equal(0xFFFF_FFFFu, BinaryPrimitives.ReadUInt32LittleEndian(v)); // vendor/device: no device
        Span<byte> w = stackalloc byte[2];
        bus.PioRead(0xCFE, w);
        Assert.Equal([0xFF, 0xFF], w.ToArray());
        bus.PioWrite(0xCF9, [0x06]);                 // a byte write is not the address register
        bus.PioRead(0xCF8, v);
        Assert.Equal(0x8000_0000u, BinaryPrimitives.ReadUInt32LittleEndian(v));
        Assert.Equal(0, bus.UnmappedAccessCount);
    }
}
