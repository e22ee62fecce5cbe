using System.Buffers.Binary;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Acpi;

/// <summary>
/// The ACPI Generic Event Device (ACPI0013) of a hardware-reduced platform, as QEMU's microvm has it: one 32-bit event
/// selector register at the DSDT's port (SharpVmm.Boot.Acpi.AcpiGedRegisters). <see cref="Signal"/> latches events and
/// raises the GED's interrupt; the guest's _EVT method reads the selector, which returns the pending events, clears
/// them and lowers the line. The line is level-triggered, so an event signalled while the guest is busy (or before its
/// driver has bound) waits for it rather than being lost. Writes are ignored (the field is WriteAsZeros).
/// Safe to call from any thread.
/// </summary>
public sealed partial class AcpiGed : IIoDevice
{
    public const ushort DefaultPort = PcLayout.AcpiGedPort;
    public const int WindowSize = 4;
    public const uint DefaultGsi = PcLayout.AcpiGedGsi;
    /// <summary>The power-button event bit (QEMU's ACPI_GED_PWR_DOWN_EVT): _EVT notifies PWRB with 0x80.</summary>
    public const uint PowerButtonEvent = 1u << 1;

    private readonly IInterruptLine _line;
    private readonly Lock _lock = new();
    private uint _pending;

    public AcpiGed(IInterruptLine line)
    {
        ArgumentNullException.ThrowIfNull(line);
        _line = line;
    }

    /// <summary>Events latched and not yet read by the guest.</summary>
    public uint Pending { get { lock (_lock) return _pending; } }

    /// <summary>Latches <paramref name="events"/> and interrupts the guest.</summary>
    public void Signal(uint events)
    {
        if (events == 0) return;
        lock (_lock)
        {
            _pending |= events;
            _line.Raise();
        }
    }

    /// <summary>Presses the power button (QMP system_powerdown).</summary>
    public void PressPowerButton() => Signal(PowerButtonEvent);

    /// <summary>Power-on state: nothing pending, line low.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _pending = 0;
            _line.Lower();
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (offset >= WindowSize) return;
        Span<byte> register = stackalloc byte[WindowSize];
        lock (_lock)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(register, _pending);
            // The read that covers byte 0 consumes the events (ACPICA reads the DWordAcc field in one access).
            if (offset == 0)
            {
                _pending = 0;
                _line.Lower();
            }
        }
        int n = Math.Min(data.Length, WindowSize - (int)offset);
        register.Slice((int)offset, n).CopyTo(data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data) { }
}
