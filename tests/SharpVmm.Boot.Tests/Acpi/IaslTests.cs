using SharpVmm.Boot.Acpi;
using SharpVmm.Memory;
using static SharpVmm.Boot.Tests.Acpi.AcpiTableReader;

namespace SharpVmm.Boot.Tests.Acpi;

/// <summary>Our tables as ACPICA's own tools see them.</summary>
public sealed class IaslTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.Create(64 << 20);
    private readonly TempDir _dir = new();

    public void Dispose()
    {
        _memory.Dispose();
        _dir.Dispose();
    }

    private string Disassemble(string name, byte[] table)
    {
        File.WriteAllBytes(_dir.File(name + ".dat"), table);
        var (code, output) = Iasl.Run(_dir.Path, "-d", name + ".dat");
        Assert.True(code == 0, output);
        Assert.DoesNotContain("Warning", output);
        Assert.DoesNotContain("Error", output);
        string dsl = File.ReadAllText(_dir.File(name + ".dsl"));
        Assert.DoesNotContain("Incorrect", dsl);
        Assert.DoesNotContain("Unknown", dsl);
        return dsl;
    }

    [NeedsFact(Need.Iasl)]
    public void Every_table_disassembles_cleanly()
    {
        var tables = Walk(_memory, AcpiTables.Build(AcpiTablesTests.TwoCpusTwoDisks, _memory));
        // (iasl -d does not take a bare RSDP; AcpiTablesTests checks both of its checksums.)
        Assert.Contains("ACPI Table Address   1", Disassemble("xsdt", tables["XSDT"].Bytes));

        string fadt = Disassemble("facp", tables["FACP"].Bytes);
        Assert.Matches(@"Hardware Reduced \(V5\) : 1", fadt);
        Assert.Matches(@"Reset Register Supported \(V2\) : 1", fadt);
        Assert.Contains("Sleep Control Register", fadt);

        string madt = Disassemble("apic", tables["APIC"].Bytes);
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(madt, @"Processor Enabled : 1").Count);
        Assert.Contains("[I/O APIC]", madt);
        Assert.Contains("[Interrupt Source Override]", madt);
        Assert.Contains("[Local APIC NMI]", madt);

        string dsdt = Disassemble("dsdt", tables["DSDT"].Bytes);
        Assert.Contains("Device (COM1)", dsdt);
        Assert.Contains("EisaId (\"PNP0501\")", dsdt);
        Assert.Contains("EisaId (\"PNP0B00\")", dsdt);
        Assert.Contains("Device (VR01)", dsdt);
        Assert.Contains("\"LNRO0005\"", dsdt);
        Assert.Contains("Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive", dsdt);
        Assert.Contains("Name (_S5, Package (0x04)", dsdt);
    }

    [NeedsFact(Need.Iasl)]
    public void The_DSDT_equals_what_iasl_compiles_from_the_equivalent_ASL()
    {
        const string asl = """
            DefinitionBlock ("", "DSDT", 2, "SHRPVM", "SHARPVMM", 1)
            {
                Scope (\_SB)
                {
                    Device (COM1)
                    {
                        Name (_HID, EisaId ("PNP0501"))
                        Name (_UID, Zero)
                        Name (_CRS, ResourceTemplate ()
                        {
                            IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                            IRQ (Edge, ActiveHigh, Exclusive) {4}
                        })
                    }
                    Device (RTC)
                    {
                        Name (_HID, EisaId ("PNP0B00"))
                        Name (_UID, Zero)
                        Name (_CRS, ResourceTemplate ()
                        {
                            IO (Decode16, 0x0070, 0x0070, 0x01, 0x02)
                            IRQ (Edge, ActiveHigh, Exclusive) {8}
                        })
                    }
                    Device (VR00)
                    {
                        Name (_HID, "LNRO0005")
                        Name (_UID, Zero)
                        Name (_CRS, ResourceTemplate ()
                        {
                            Memory32Fixed (ReadWrite, 0xD0000000, 0x00000200)
                            Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {5}
                        })
                    }
                    Device (VR01)
                    {
                        Name (_HID, "LNRO0005")
                        Name (_UID, One)
                        Name (_CRS, ResourceTemplate ()
                        {
                            Memory32Fixed (ReadWrite, 0xD0000200, 0x00000200)
                            Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) {6}
                        })
                    }
                }
                Name (\_S5, Package (0x04) { 0x05, Zero, Zero, Zero })
            }
            """;
        File.WriteAllText(_dir.File("ref.asl"), asl);
        var (code, output) = Iasl.Run(_dir.Path, "-p", "ref", "ref.asl");
        Assert.True(code == 0, output);
        var reference = File.ReadAllBytes(_dir.File("ref.aml"));

        var ours = Dsdt.Build(AcpiTablesTests.TwoCpusTwoDisks);
        Assert.Equal(reference.Length, ours.Length);
        Assert.Equal(reference[36..], ours[36..]);
        Assert.Equal(reference[..9], ours[..9]);      // signature, length, revision
        Assert.Equal(reference[10..28], ours[10..28]); // OEM ID, table ID, OEM revision
    }

    [NeedsFact(Need.Iasl)]
    public void The_power_button_and_pvpanic_equal_what_iasl_compiles_from_QEMU_microvm_style_ASL()
    {
        const string asl = """
            DefinitionBlock ("", "DSDT", 2, "SHRPVM", "SHARPVMM", 1)
            {
                Scope (\_SB)
                {
                    Device (COM1)
                    {
                        Name (_HID, EisaId ("PNP0501"))
                        Name (_UID, Zero)
                        Name (_CRS, ResourceTemplate ()
                        {
                            IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                            IRQ (Edge, ActiveHigh, Exclusive) {4}
                        })
                    }
                    Device (PWRB)
                    {
                        Name (_HID, EisaId ("PNP0C0C"))
                        Name (_UID, Zero)
                    }
                    Device (GED)
                    {
                        Name (_HID, "ACPI0013")
                        Name (_UID, Zero)
                        Name (_CRS, ResourceTemplate ()
                        {
                            Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) {9}
                        })
                        OperationRegion (EREG, SystemIO, 0x0604, 0x04)
                        Field (EREG, DWordAcc, NoLock, WriteAsZeros)
                        {
                            ESEL, 32
                        }
                        Method (_EVT, 1, Serialized)
                        {
                            Local0 = ESEL
                            If ((Local0 & 0x02))
                            {
                                Notify (PWRB, 0x80)
                            }
                        }
                    }
                    Device (PEVT)
                    {
                        Name (_HID, "QEMU0001")
                        Name (_UID, Zero)
                        Name (_CRS, ResourceTemplate ()
                        {
                            IO (Decode16, 0x0505, 0x0505, 0x01, 0x01)
                        })
                    }
                }
                Name (\_S5, Package (0x04) { 0x05, Zero, Zero, Zero })
            }
            """;
        File.WriteAllText(_dir.File("ged.asl"), asl);
        var (code, output) = Iasl.Run(_dir.Path, "-p", "ged", "ged.asl");
        Assert.True(code == 0, output);
        var reference = File.ReadAllBytes(_dir.File("ged.aml"));

        var ours = Dsdt.Build(new AcpiSpec { CmosRtc = false, Ged = new AcpiGedSpec(), PvPanicPort = PvPanicRegisters.DefaultPort });
        Assert.Equal(reference[36..], ours[36..]);
        Assert.Equal(reference.Length, ours.Length);

        string dsl = Disassemble("dsdt", ours);
        Assert.Contains("Notify (PWRB, 0x80)", dsl);
    }

    [NeedsFact(Need.Iasl)]
    public void A_large_DSDT_round_trips_through_the_disassembler()
    {
        var devices = new VirtioMmioDeviceSpec[100];
        for (int i = 0; i < devices.Length; i++)
            devices[i] = new VirtioMmioDeviceSpec(0xD000_0000 + (ulong)i * 0x200, 5 + (uint)i, LevelTriggered: i % 2 == 0);
        var spec = new AcpiSpec { VirtioMmioDevices = devices, IoApicPins = 120 };
        var ours = Dsdt.Build(spec);
        Assert.True(ours.Length > 0x1000, "big enough for three-byte PkgLengths");

        string dsl = Disassemble("big", ours);
        File.WriteAllText(_dir.File("again.dsl"), dsl);
        var (code, output) = Iasl.Run(_dir.Path, "-p", "again", "again.dsl");
        Assert.True(code == 0, output);
        var recompiled = File.ReadAllBytes(_dir.File("again.aml"));
        Assert.Equal(ours[36..], recompiled[36..]);
    }
}
