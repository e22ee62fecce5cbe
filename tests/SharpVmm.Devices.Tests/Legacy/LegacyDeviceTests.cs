using SharpVmm.Devices.Legacy;

namespace SharpVmm.Devices.Tests.Legacy;

public sealed class LegacyDeviceTests
{
    private sealed class Control : IVmControl
    {
        public int? ExitCode;
        public int Resets;
        public void RequestPowerOff(int exitCode) => ExitCode = exitCode;
        public void RequestReset() => Resets++;
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 3)]
    [InlineData(0x21, 0x43)]
    [InlineData(0xFF, 0x1FF)]
    public void Debug_exit_turns_the_byte_into_an_odd_exit_code(byte v, int code)
    {
        var c = new Control();
        new DebugExitPort(c).Write(0, [v]);
        Assert.Equal(code, c.ExitCode);
    }

    [Fact]
    public void Debug_exit_takes_a_four_byte_write_through_the_bus_by_its_low_byte()
    {
        var c = new Control();
        var bus = new SharpVmm.Devices.Bus.IoBus();
        bus.RegisterPort(DebugExitPort.DefaultPort, 1, new DebugExitPort(c), "debug-exit");
        bus.PioWrite(DebugExitPort.DefaultPort, [0x21, 0, 0, 0]);
        Assert.Equal(0x43, c.ExitCode);
    }

    [Fact]
    public void Debug_exit_with_iosize_4_sees_the_whole_write()
    {
        var c = new Control();
        var bus = new SharpVmm.Devices.Bus.IoBus();
        bus.RegisterPort(0x501, 4, new DebugExitPort(c), "debug-exit");
        bus.PioWrite(0x502, [0x05, 0]); // any port of the window
        Assert.Equal(0x0B, c.ExitCode);
    }

    [Fact]
    public void I8042_command_FE_resets_the_machine()
    {
        var c = new Control();
        var k = new I8042Controller(c);
        k.CommandPort.Write(0, [0xFE]);
        Assert.Equal(1, c.Resets);
    }

    [Fact]
    public void I8042_output_port_with_bit0_clear_resets_and_self_test_answers()
    {
        var c = new Control();
        var k = new I8042Controller(c);
        Span<byte> b = stackalloc byte[1];
        k.CommandPort.Write(0, [0xAA]);
        k.CommandPort.Read(0, b);
        Assert.Equal(0x01, b[0] & 0x01); // output buffer full
        k.DataPort.Read(0, b);
        Assert.Equal(0x55, b[0]);
        k.CommandPort.Write(0, [0x20]);
        k.DataPort.Read(0, b);
        byte config = b[0];
        k.CommandPort.Write(0, [0x60]);
        k.DataPort.Write(0, [(byte)(config | 0x02)]);
        k.CommandPort.Write(0, [0x20]);
        k.DataPort.Read(0, b);
        Assert.Equal(config | 0x02, b[0]);
        Assert.Equal(0, c.Resets);
        k.CommandPort.Write(0, [0xD1]);
        k.DataPort.Write(0, [0x02]);
        Assert.Equal(1, c.Resets);
    }
}
