using System.Buffers.Binary;
using SharpVmm.Boot.Acpi;
using SharpVmm.Memory;
using static SharpVmm.Boot.Tests.Acpi.AcpiTableReader;

namespace SharpVmm.Boot.Tests.Acpi;

public sealed class AcpiTablesTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.Create(64 << 20);

    public void Dispose() => _memory.Dispose();

    internal static readonly AcpiSpec TwoCpusTwoDisks = new()
    {
        CpuCount = 2,
        VirtioMmioDevices = [new VirtioMmioDeviceSpec(0xD000_0000, 5), new VirtioMmioDeviceSpec(0xD000_0200, 6, LevelTriggered: true)],
    };

    // COM1 as the ACPI spec encodes it:
    // Device (COM1) { Name (_HID, EisaId ("PNP0501")) Name (_UID, Zero)
    //                 Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 1, 8) IRQ (Edge, ActiveHigh, Exclusive) {4} }) }
    internal static readonly byte[] Com1Aml =
    [
        0x5B, 0x82, 0x2C, (byte)'C', (byte)'O', (byte)'M', (byte)'1',            // DeviceOp, PkgLength 44, "COM1"
        0x08, (byte)'_', (byte)'H', (byte)'I', (byte)'D', 0x0C, 0x41, 0xD0, 0x05, 0x01, // Name(_HID, DWord 0x0105D041)
        0x08, (byte)'_', (byte)'U', (byte)'I', (byte)'D', 0x00,                  // Name(_UID, Zero)
        0x08, (byte)'_', (byte)'C', (byte)'R', (byte)'S',                        // Name(_CRS,
        0x11, 0x11, 0x0A, 0x0E,                                                  //   Buffer, PkgLength 17, size 14
        0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08,                          //   IO descriptor
        0x23, 0x10, 0x00, 0x01,                                                  //   IRQ descriptor, mask 1 << 4, edge
        0x79, 0x00,                                                              //   End Tag
    ];

    // Device (VR01) { Name (_HID, "LNRO0005") Name (_UID, One)
    //   Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, 0xD0000200, 0x200)
    //                                     Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) {6} }) }
    internal static readonly byte[] Virtio1Aml =
    [
        0x5B, 0x82, 0x3A, (byte)'V', (byte)'R', (byte)'0', (byte)'1',
        0x08, (byte)'_', (byte)'H', (byte)'I', (byte)'D', 0x0D, .. "LNRO0005"u8, 0x00,
        0x08, (byte)'_', (byte)'U', (byte)'I', (byte)'D', 0x01,
        0x08, (byte)'_', (byte)'C', (byte)'R', (byte)'S',
        0x11, 0x1A, 0x0A, 0x17,
        0x86, 0x09, 0x00, 0x01, 0x00, 0x02, 0x00, 0xD0, 0x00, 0x02, 0x00, 0x00,
        0x89, 0x06, 0x00, 0x01, 0x01, 0x06, 0x00, 0x00, 0x00,
        0x79, 0x00,
    ];

    // Name (_S5, Package (4) { 5, Zero, Zero, Zero })
    internal static readonly byte[] S5Aml = [0x08, (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x07, 0x04, 0x0A, 0x05, 0x00, 0x00, 0x00];

    [Fact]
    public void The_RSDP_is_at_the_base_and_found_by_a_BIOS_area_scan()
    {
        ulong rsdp = AcpiTables.Build(TwoCpusTwoDisks, _memory, AcpiTables.DefaultBaseAddress, out ulong length);
        Assert.Equal(0xE0000UL, rsdp);
        Assert.InRange(length, 400UL, 0x1000UL);

        ulong? found = null;
        var probe = new byte[8];
        for (ulong a = 0xE0000; a < 0x100000 && found is null; a += 16)
        {
            _memory.Read(a, probe);
            if (probe.AsSpan().SequenceEqual("RSD PTR "u8)) found = a;
        }
        Assert.Equal(rsdp, found);

        var r = new byte[36];
        _memory.Read(rsdp, r);
        Assert.Equal(2, r[15]);                                    // revision
        Assert.Equal(36u, BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(20)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(16))); // no RSDT
        Assert.Equal("SHRPVM"u8.ToArray(), r[9..15]);
    }

    [Fact]
    public void Every_table_has_a_valid_checksum_and_the_XSDT_lists_FADT_and_MADT()
    {
        ulong rsdp = AcpiTables.Build(TwoCpusTwoDisks, _memory, AcpiTables.DefaultBaseAddress, out ulong length);
        var tables = Walk(_memory, rsdp);
        Assert.Equal(["APIC", "DSDT", "FACP", "XSDT"], tables.Keys.Order());
        foreach (var (address, bytes) in tables.Values)
        {
            Assert.Equal(0UL, address % 16);
            Assert.True(address + (ulong)bytes.Length <= rsdp + length);
            Assert.Equal("SVMM"u8.ToArray(), bytes[28..32]);
        }
        Assert.Equal(2 * 8 + 36, tables["XSDT"].Bytes.Length);
    }

    [Fact]
    public void The_FADT_is_hardware_reduced_with_sleep_and_reset_registers_in_IO_space()
    {
        var tables = Walk(_memory, AcpiTables.Build(TwoCpusTwoDisks with { SleepPort = 0x700 }, _memory));
        var f = tables["FACP"].Bytes;
        Assert.Equal(276, f.Length);
        Assert.Equal(6, f[8]);
        Assert.Equal(3, f[131]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(112));
        Assert.NotEqual(0u, flags & (1u << 20));                  // HW_REDUCED_ACPI
        Assert.NotEqual(0u, flags & (1u << 10));                  // RESET_REG_SUP
        // FORCE_APIC_PHYSICAL_DESTINATION_MODE clear: guests choose (Fadt.ForceApicPhysicalDestinationMode says why).
        Assert.Equal(0u, flags & Fadt.ForceApicPhysicalDestinationMode);
        Assert.Equal(1u << 19, Fadt.ForceApicPhysicalDestinationMode);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(46)));  // no SCI
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(64))); // no PM1a control block
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(132))); // no FACS

        byte[] Gas(ushort port) => [1, 8, 0, 1, (byte)port, (byte)(port >> 8), 0, 0, 0, 0, 0, 0];
        Assert.Equal(Gas(0x700), f[244..256]);                   // SLEEP_CONTROL_REG
        Assert.Equal(Gas(0x701), f[256..268]);                   // SLEEP_STATUS_REG
        Assert.Equal(Gas(0x702), f[116..128]);                   // RESET_REG
        Assert.Equal(AcpiSleepRegisters.ResetValue, f[128]);

        ulong dsdt = tables["DSDT"].Address;
        Assert.Equal(dsdt, BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(40)));
        Assert.Equal(dsdt, BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(140)));

        ushort boot = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(109));
        Assert.Equal(Fadt.LegacyDevices | Fadt.VgaNotPresent, boot);  // RTC present, no 8042
    }

    [Fact]
    public void IA_PC_boot_flags_follow_the_spec()
    {
        var spec = new AcpiSpec { CmosRtc = false, I8042 = true, Com1 = false };
        var f = Walk(_memory, AcpiTables.Build(spec, _memory))["FACP"].Bytes;
        Assert.Equal(Fadt.Has8042 | Fadt.VgaNotPresent | Fadt.CmosRtcNotPresent, BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(109)));
    }

    [Fact]
    public void The_MADT_lists_each_CPU_the_IOAPIC_the_timer_override_and_the_NMI()
    {
        var spec = TwoCpusTwoDisks with { CpuCount = 3, IoApicId = 7 };
        var m = Walk(_memory, AcpiTables.Build(spec, _memory))["APIC"].Bytes;
        Assert.Equal(0xFEE0_0000u, BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(36)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(40)));  // PCAT_COMPAT

        var entries = new List<byte[]>();
        for (int o = 44; o < m.Length; o += m[o + 1])
        {
            Assert.True(m[o + 1] >= 2);
            entries.Add(m[o..(o + m[o + 1])]);
        }
        Assert.Equal(6, entries.Count);
        for (int cpu = 0; cpu < 3; cpu++)
            Assert.Equal(new byte[] { 0, 8, (byte)cpu, (byte)cpu, 1, 0, 0, 0 }, entries[cpu]);
        Assert.Equal(new byte[] { 1, 12, 7, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0 }, entries[3]);
        Assert.Equal(new byte[] { 2, 10, 0, 0, 2, 0, 0, 0, 0x05, 0x00 }, entries[4]);
        Assert.Equal(new byte[] { 4, 6, 0xFF, 0, 0, 1 }, entries[5]);
    }

    [Fact]
    public void The_DSDT_describes_COM1_the_virtio_devices_and_S5()
    {
        var d = Walk(_memory, AcpiTables.Build(TwoCpusTwoDisks, _memory))["DSDT"].Bytes;
        Assert.Equal(2, d[8]);
        var aml = d.AsSpan(36);
        Assert.Equal(new byte[] { 0x10 }, aml[..1].ToArray());         // ScopeOp
        Assert.Equal("_SB_"u8.ToArray(), aml.Slice(3, 4).ToArray());   // after a two-byte PkgLength
        Assert.True(aml.IndexOf(Com1Aml) > 0, "COM1 device encoded as the spec says");
        Assert.True(aml.IndexOf(Virtio1Aml) > aml.IndexOf(Com1Aml), "second virtio device encoded as the spec says");
        Assert.True(aml.EndsWith(S5Aml), "_S5 at the root, after \\_SB");
        Assert.Equal(Com1Aml, Dsdt.Com1Device());
        // Device (RTC_) { Name (_HID, EisaId ("PNP0B00")) Name (_UID, Zero) Name (_CRS, { IO 0x70/2, IRQ 8 edge }) }
        byte[] rtc =
        [
            0x5B, 0x82, 0x2C, .. "RTC_"u8,
            0x08, .. "_HID"u8, 0x0C, 0x41, 0xD0, 0x0B, 0x00,
            0x08, .. "_UID"u8, 0x00,
            0x08, .. "_CRS"u8, 0x11, 0x11, 0x0A, 0x0E,
            0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02,
            0x23, 0x00, 0x01, 0x01,
            0x79, 0x00,
        ];
        Assert.True(aml.IndexOf(rtc) > aml.IndexOf(Com1Aml));
        var noRtc = Dsdt.Build(TwoCpusTwoDisks with { CmosRtc = false });
        Assert.True(noRtc.AsSpan().IndexOf(rtc) < 0);
    }

    [Fact]
    public void Tables_can_go_anywhere_in_RAM()
    {
        ulong rsdp = AcpiTables.Build(TwoCpusTwoDisks, _memory, 0x200_0000, out _);
        Assert.Equal(0x200_0000UL, rsdp);
        Assert.Equal(4, Walk(_memory, rsdp).Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(256)]
    public void A_CPU_count_xAPIC_cannot_describe_is_refused(int cpus)
    {
        Assert.Throws<BootException>(() => AcpiTables.Build(new AcpiSpec { CpuCount = cpus }, _memory));
    }

    [Fact]
    public void Up_to_255_CPUs_fit()
    {
        var m = Walk(_memory, AcpiTables.Build(new AcpiSpec { CpuCount = 255 }, _memory))["APIC"].Bytes;
        Assert.Equal(44 + 255 * 8 + 12 + 10 + 6, m.Length);
    }

    public static TheoryData<VirtioMmioDeviceSpec[]> BadDevices => new()
    {
        new[] { new VirtioMmioDeviceSpec(0xD000_0000, 24) },                                                // past the IOAPIC
        new[] { new VirtioMmioDeviceSpec(0xD000_0000, 4) },                                                 // COM1's IRQ
        new[] { new VirtioMmioDeviceSpec(0xD000_0000, 2) },                                                 // the timer's GSI
        new[] { new VirtioMmioDeviceSpec(0xD000_0000, 8) },                                                 // the RTC's IRQ
        new[] { new VirtioMmioDeviceSpec(0xD000_0000, 5), new VirtioMmioDeviceSpec(0xD000_1000, 5) },      // shared GSI
        new[] { new VirtioMmioDeviceSpec(0xD000_0000, 5), new VirtioMmioDeviceSpec(0xD000_0100, 6) },      // overlapping windows
        new[] { new VirtioMmioDeviceSpec(0xFFFF_FF00, 5) },                                                 // crosses 4 GiB
        new[] { new VirtioMmioDeviceSpec(0xD000_0000, 5, Size: 0) },
    };

    [Theory]
    [MemberData(nameof(BadDevices))]
    public void Bad_virtio_device_lists_are_refused(VirtioMmioDeviceSpec[] devices)
    {
        Assert.Throws<BootException>(() => AcpiTables.Build(new AcpiSpec { VirtioMmioDevices = devices }, _memory));
    }

    [Fact]
    public void Bad_placements_are_refused()
    {
        Assert.Throws<BootException>(() => AcpiTables.Build(new AcpiSpec(), _memory, 0xE0008));      // not 16-byte aligned
        Assert.Throws<BootException>(() => AcpiTables.Build(new AcpiSpec(), _memory, 0x1_0000_0000)); // not RAM
        Assert.Throws<BootException>(() => AcpiTables.Build(new AcpiSpec(), _memory, 0xFFF00));     // runs into 1 MiB
        Assert.Throws<BootException>(() => AcpiTables.Build(new AcpiSpec { SleepPort = 0x3FA }, _memory)); // on COM1
        Assert.Throws<BootException>(() => AcpiTables.Build(new AcpiSpec { SleepPort = 0x6F }, _memory));  // on the RTC
        AcpiTables.Build(new AcpiSpec { SleepPort = 0x6F, CmosRtc = false }, _memory);
        Assert.Throws<BootException>(() => AcpiTables.Build(new AcpiSpec { OemId = "TOO-LONG" }, _memory));
    }
}
