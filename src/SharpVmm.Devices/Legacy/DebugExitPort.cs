using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Legacy;

/// <summary>
/// QEMU's isa-debug-exit (port 0xF4, one byte): the guest writes v and the VMM exits with (v &lt;&lt; 1) | 1,
/// so a test guest can report pass or fail through the exit code (never 0, which stays "clean poweroff").
/// </summary>
public sealed class DebugExitPort(IVmControl control) : IIoDevice
{
    public const ushort DefaultPort = PcLayout.DebugExitPort;

    public void Read(ulong offset, Span<byte> data) => data.Fill(0xFF);

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // Wider writes use their low byte, as QEMU's device does with iosize=1 accesses split by the bus.
        control.RequestPowerOff((data[0] << 1) | 1);
    }
}
