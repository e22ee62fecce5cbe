using SharpVmm.Devices.Legacy;

namespace SharpVmm.Devices.Tests.Legacy;

public class PvPanicPortTests
{
    private readonly List<byte> _events = [];
    private readonly PvPanicPort _port;

    public PvPanicPortTests() => _port = new PvPanicPort(_events.Add);

    [Fact]
    public void Reading_the_port_tells_the_guest_which_events_the_host_understands()
    {
        Assert.Equal(0x505, PvPanicPort.DefaultPort);
        Span<byte> b = stackalloc byte[1];
        _port.Read(0, b);
        Assert.Equal(3, b[0]); // PVPANIC_PANICKED | PVPANIC_CRASH_LOADED, as QEMU 7.2 answers
    }

    [Fact]
    public void A_panic_and_a_crash_kernel_are_reported_and_unknown_bits_are_ignored()
    {
        _port.Write(0, [0x01]);
        _port.Write(0, [0x02]);
        _port.Write(0, [0x00]);
        _port.Write(0, [0x80]);
        _port.Write(0, [0x81]);
        Assert.Equal([1, 2, 1], _events);
    }
}
