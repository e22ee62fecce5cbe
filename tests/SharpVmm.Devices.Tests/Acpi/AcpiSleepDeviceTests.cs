using SharpVmm.Devices.Acpi;

namespace SharpVmm.Devices.Tests.Acpi;

public class AcpiSleepDeviceTests
{
    private readonly List<AcpiPowerRequest> _requests = [];
    private readonly AcpiSleepDevice _device;

    public AcpiSleepDeviceTests() => _device = new AcpiSleepDevice(_requests.Add);

    private byte ReadByte(ulong offset)
    {
        Span<byte> b = stackalloc byte[1];
        _device.Read(offset, b);
        return b[0];
    }

    [Fact]
    public void The_register_layout_is_the_one_the_FADT_advertises()
    {
        // SharpVmm.Boot.Acpi.AcpiSleepRegisters holds the same numbers; both sides are pinned to the literals here.
        Assert.Equal(0x600, AcpiSleepDevice.DefaultPort);
        Assert.Equal((0, 1, 2, 3), (AcpiSleepDevice.ControlOffset, AcpiSleepDevice.StatusOffset, AcpiSleepDevice.ResetOffset, AcpiSleepDevice.WindowSize));
        Assert.Equal(1, AcpiSleepDevice.ResetValue);
        Assert.Equal(5, AcpiSleepDevice.S5SleepType);
    }

    [Fact]
    public void SLP_TYP_5_with_SLP_EN_powers_off()
    {
        // What ACPICA writes for S5 on a hardware-reduced platform: (5 << 2) | SLP_EN = 0x34.
        _device.Write(0, [0x34]);
        Assert.Equal([AcpiPowerRequest.PowerOff], _requests);
    }

    [Fact]
    public void Without_SLP_EN_nothing_happens()
    {
        _device.Write(0, [0x14]);
        Assert.Empty(_requests);
        Assert.Equal(0, ReadByte(1));
    }

    [Fact]
    public void Linux_sequence_clear_wake_status_then_sleep()
    {
        _device.Write(1, [0x80]);
        _device.Write(0, [0x34]);
        Assert.Equal([AcpiPowerRequest.PowerOff], _requests);
    }

    [Fact]
    public void Unsupported_sleep_states_wake_at_once_and_are_counted()
    {
        _device.Write(0, [(3 << 2) | 0x20]);   // S3
        Assert.Empty(_requests);
        Assert.Equal(1, _device.IgnoredSleepRequests);
        Assert.Equal(0x80, ReadByte(1));        // WAK_STS: the guest's wait loop ends
        _device.Write(1, [0x80]);               // write 1 to clear
        Assert.Equal(0, ReadByte(1));
    }

    [Fact]
    public void Writing_zero_to_status_does_not_clear_it()
    {
        _device.Write(0, [(1 << 2) | 0x20]);
        _device.Write(1, [0x00]);
        Assert.Equal(0x80, ReadByte(1));
    }

    [Fact]
    public void The_reset_value_resets_and_other_values_do_not()
    {
        _device.Write(2, [0x02]);
        _device.Write(2, [0x00]);
        Assert.Empty(_requests);
        _device.Write(2, [0x01]);
        Assert.Equal([AcpiPowerRequest.Reset], _requests);
    }

    [Fact]
    public void A_wide_access_covers_consecutive_registers()
    {
        _device.Write(0, [0x00, 0x80, 0x01]);   // control (no SLP_EN), status clear, reset
        Assert.Equal([AcpiPowerRequest.Reset], _requests);
        Span<byte> b = stackalloc byte[4];
        _device.Read(0, b);
        Assert.Equal(new byte[] { 0, 0, 0, 0 }, b.ToArray());
    }

    [Fact]
    public void Accesses_past_the_window_are_ignored()
    {
        _device.Write(3, [0x34]);
        _device.Write(100, [0x01]);
        Assert.Empty(_requests);
        Assert.Equal(0, ReadByte(7));
    }

    [Fact]
    public void A_null_callback_is_refused()
    {
        Assert.Throws<ArgumentNullException>(() => new AcpiSleepDevice(null!));
    }
}
