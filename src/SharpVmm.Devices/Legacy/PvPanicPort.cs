using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Legacy;

/// <summary>
/// QEMU's ISA pvpanic device (-device pvpanic, ACPI _HID QEMU0001): one I/O port. Reading it tells the guest which
/// events the host understands; the guest writes an event when its kernel panics (Linux's pvpanic driver does so from
/// its panic notifier, before the kernel reboots or halts). Bit 0: panicked, the host should act; bit 1: a crash kernel
/// was loaded and will take over, the host should only record it.
/// </summary>
public sealed class PvPanicPort : IIoDevice
{
    public const ushort DefaultPort = PcLayout.PvPanicPort;
    public const byte Panicked = 1, CrashLoaded = 2;
    public const byte SupportedEvents = Panicked | CrashLoaded;

    private readonly Action<byte> _onEvent;

    /// <param name="onEvent">Called on the writing vCPU's thread with the events written (never 0, only supported bits).</param>
    public PvPanicPort(Action<byte> onEvent)
    {
        ArgumentNullException.ThrowIfNull(onEvent);
        _onEvent = onEvent;
    }

    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (offset == 0 && data.Length > 0) data[0] = SupportedEvents;
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset != 0 || data.Length == 0) return;
        // Unknown bits are ignored, as QEMU does (it logs them once).
        byte events = (byte)(data[0] & SupportedEvents);
        if (events != 0) _onEvent(events);
    }
}
