using System.Buffers.Binary;
using System.Text;
using SharpVmm.Core.Platform;
using SharpVmm.Devices.Bus;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

/// <summary>The ACPI tables a built machine carries describe the devices where the board put them (both from <see cref="PcLayout"/>).</summary>
public sealed class PcBoardTests
{
    [Fact]
    public void The_acpi_tables_and_the_bus_agree_on_every_address_port_and_slot()
    {
        using var dir = new TempDir();
        var kernel = dir["k.elf"];
        File.WriteAllBytes(kernel, MultibootElf.Kernel(a => { a.cli(); a.hlt(); }));
        var disk = dir["d.img"];
        File.WriteAllBytes(disk, new byte[1 << 20]);
        var disk2 = dir["e.img"];
        File.WriteAllBytes(disk2, new byte[1 << 20]);
        using var vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 64UL << 20,
            Cpus = 2,
            Kernel = kernel,
            Serial = "none",
            Disks = [new DiskSpec(disk, "raw"), new DiskSpec(disk2, "raw", ReadOnly: true)],
            Rng = true,
        });
        var tables = Tables(vm);

        var madt = tables["APIC"];
        Assert.Equal((uint)PcLayout.LocalApicBase, BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(36)));
        ulong ioApic = 0;
        for (int i = 44; i < madt.Length; i += madt[i + 1])
            if (madt[i] == 1) ioApic = BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(i + 4));
        Assert.Equal(PcLayout.IoApicBase, ioApic);
        Assert.Equal("ioapic", vm.Bus.Find(IoSpace.Mmio, ioApic)?.Name);

        var fadt = tables["FACP"];
        ulong sleep = BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(244 + 4)); // SLEEP_CONTROL_REG's address
        Assert.Equal(PcLayout.AcpiSleepPort, sleep);
        Assert.Equal("acpi-sleep", vm.Bus.Find(IoSpace.Port, sleep)?.Name);

        // Every virtio-mmio window the DSDT describes (Memory32Fixed: 86 09 00 rw base len) is a transport on the bus, and back.
        var dsdt = tables["DSDT"];
        var described = new List<string>();
        for (int i = 0; i + 12 <= dsdt.Length; i++)
        {
            if (dsdt[i] != 0x86 || dsdt[i + 1] != 0x09 || dsdt[i + 2] != 0) continue;
            ulong b = BinaryPrimitives.ReadUInt32LittleEndian(dsdt.AsSpan(i + 4));
            var range = vm.Bus.Find(IoSpace.Mmio, b);
            Assert.NotNull(range);
            Assert.Equal(b, range.Base);
            described.Add(range.Name);
        }
        var onBus = vm.Bus.MmioRanges.Where(r => r.Name.StartsWith("virtio-", StringComparison.Ordinal)).Select(r => r.Name).ToList();
        Assert.Equal(["virtio-blk0", "virtio-blk1", "virtio-rng"], described);
        Assert.Equal(described.Order(), onBus.Order());
        for (int i = 0; i < described.Count; i++)
            Assert.Equal(PcLayout.VirtioMmioSlot(i).Base, vm.Bus.MmioRanges.Single(r => r.Name == described[i]).Base);
    }

    /// <summary>RSDP (in the BIOS area) → XSDT → each table by signature, the DSDT through the FADT.</summary>
    private static Dictionary<string, byte[]> Tables(VirtualMachine vm)
    {
        var m = vm.Memory;
        ulong rsdp = 0;
        for (ulong a = PcLayout.AcpiTablesBase; a < 0x10_0000; a += 16)
            if (Encoding.ASCII.GetString(m.GetReadOnlySpan(a, 8)) == "RSD PTR ") { rsdp = a; break; }
        Assert.NotEqual(0UL, rsdp);
        ulong xsdt = m.Read<ulong>(rsdp + 24);
        var result = new Dictionary<string, byte[]>();
        uint xsdtLength = m.Read<uint>(xsdt + 4);
        for (ulong e = xsdt + 36; e < xsdt + xsdtLength; e += 8) Add(m.Read<ulong>(e));
        var facp = result["FACP"];
        ulong dsdt = BinaryPrimitives.ReadUInt64LittleEndian(facp.AsSpan(140)); // X_DSDT, else DSDT
        Add(dsdt != 0 ? dsdt : BinaryPrimitives.ReadUInt32LittleEndian(facp.AsSpan(40)));
        return result;

        void Add(ulong at) => result[Encoding.ASCII.GetString(m.GetReadOnlySpan(at, 4))] = m.GetReadOnlySpan(at, (int)m.Read<uint>(at + 4)).ToArray();
    }
}
