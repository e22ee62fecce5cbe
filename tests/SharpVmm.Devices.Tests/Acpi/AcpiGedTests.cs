using System.Buffers.Binary;
using SharpVmm.Devices.Acpi;
using SharpVmm.Devices.Tests.State;
using SharpVmm.Devices.Tests.Virtio;

namespace SharpVmm.Devices.Tests.Acpi;

public class AcpiGedTests
{
    private readonly LevelLine _line = new();
    private readonly AcpiGed _ged;

    public AcpiGedTests() => _ged = new AcpiGed(_line);

    private uint ReadSelector()
    {
        Span<byte> b = stackalloc byte[4];
        _ged.Read(0, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    [Fact]
    public void The_register_and_event_bits_are_the_ones_the_DSDT_and_QEMU_use()
    {
        // SharpVmm.Boot.Acpi.AcpiGedRegisters holds the same numbers; both sides are pinned to the literals here.
        Assert.Equal((0x604, 4, 9u), (AcpiGed.DefaultPort, AcpiGed.WindowSize, AcpiGed.DefaultGsi));
        Assert.Equal(2u, AcpiGed.PowerButtonEvent); // QEMU's ACPI_GED_PWR_DOWN_EVT
    }

    [Fact]
    public void A_press_raises_the_line_until_the_guest_reads_the_selector_which_clears_it()
    {
        Assert.False(_line.High);
        Assert.Equal(0u, ReadSelector());

        _ged.PressPowerButton();
        Assert.True(_line.High);
        Assert.Equal(AcpiGed.PowerButtonEvent, _ged.Pending);

        Assert.Equal(AcpiGed.PowerButtonEvent, ReadSelector());
        Assert.False(_line.High);
        Assert.Equal(0u, ReadSelector()); // consumed: _EVT sees each press once
    }

    [Fact]
    public void Events_signalled_before_the_guest_reads_are_merged_into_one_read()
    {
        _ged.Signal(1);
        _ged.PressPowerButton();
        Assert.Equal(3u, ReadSelector());
        Assert.False(_line.High);
    }

    [Fact]
    public void Writes_are_ignored_and_reads_past_the_register_are_zero()
    {
        _ged.PressPowerButton();
        _ged.Write(0, [0xFF, 0xFF, 0xFF, 0xFF]);
        Span<byte> b = stackalloc byte[1];
        _ged.Read(1, b); // a byte of the register other than the first does not consume the events
        Assert.Equal(0, b[0]);
        Assert.True(_line.High);
        _ged.Read(7, b);
        Assert.Equal(0, b[0]);
        Assert.Equal(AcpiGed.PowerButtonEvent, ReadSelector());
    }

    [Fact]
    public void Reset_drops_pending_events()
    {
        _ged.PressPowerButton();
        _ged.Reset();
        Assert.False(_line.High);
        Assert.Equal(0u, ReadSelector());
    }

    [Fact]
    public void A_pending_press_survives_save_and_load_with_the_line_up()
    {
        _ged.PressPowerButton();
        var line = new LevelLine();
        var copy = new AcpiGed(line);
        DeviceStateTests.Copy(_ged, copy);
        Assert.True(line.High);
        Span<byte> b = stackalloc byte[4];
        copy.Read(0, b);
        Assert.Equal(AcpiGed.PowerButtonEvent, BinaryPrimitives.ReadUInt32LittleEndian(b));
        DeviceStateTests.TruncationsAreRefused(_ged, () => new AcpiGed(new LevelLine()));
    }
}
