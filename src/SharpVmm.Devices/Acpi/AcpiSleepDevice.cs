using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Acpi;

/// <summary>What the guest asked for through the ACPI sleep/reset registers.</summary>
public enum AcpiPowerRequest
{
    /// <summary>S5 soft-off: SLP_TYP = 5 with SLP_EN in SLEEP_CONTROL_REG (Linux "poweroff").</summary>
    PowerOff,
    /// <summary>The FADT reset value written to RESET_REG (Linux "reboot").</summary>
    Reset,
}

/// <summary>
/// The hardware-reduced ACPI sleep and reset registers the VMM's FADT points at (SharpVmm.Boot.Acpi.Fadt): a 3-port
/// window registered on the port bus at the FADT's sleep port (0x600 by default).
/// <list type="table">
/// <item><term>+0 SLEEP_CONTROL_REG</term><description>write: SLP_TYP bits 4:2, SLP_EN bit 5; reads 0</description></item>
/// <item><term>+1 SLEEP_STATUS_REG</term><description>WAK_STS bit 7, write 1 to clear</description></item>
/// <item><term>+2 RESET_REG</term><description>write <see cref="ResetValue"/> to reset; reads 0</description></item>
/// </list>
/// SLP_EN with SLP_TYP 5 (the DSDT's \_S5) raises <see cref="AcpiPowerRequest.PowerOff"/>. The tables advertise no
/// other sleep state; should a guest enter one anyway, the device reports an immediate wake (WAK_STS = 1) so that the
/// guest's wait loop ends and it carries on, rather than spinning forever. Safe to call from several vCPU threads.
/// </summary>
public sealed partial class AcpiSleepDevice : IIoDevice
{
    public const ushort DefaultPort = PcLayout.AcpiSleepPort;
    public const int ControlOffset = 0, StatusOffset = 1, ResetOffset = 2;
    public const int WindowSize = 3;
    public const byte ResetValue = 0x01;
    public const byte S5SleepType = 5;
    public const byte SleepTypeShift = 2, SleepTypeMask = 0x1C, SleepEnable = 0x20, WakeStatus = 0x80;

    private readonly Action<AcpiPowerRequest> _onRequest;
    private readonly Lock _lock = new();
    private byte _status;

    /// <param name="onRequest">Called on the vCPU thread that wrote the register; the machine stops or resets the VM.</param>
    public AcpiSleepDevice(Action<AcpiPowerRequest> onRequest)
    {
        ArgumentNullException.ThrowIfNull(onRequest);
        _onRequest = onRequest;
    }

    /// <summary>Sleep writes for states the tables do not offer (ignored, answered with a wake), for diagnostics.</summary>
    public int IgnoredSleepRequests { get; private set; }

    public void Read(ulong offset, Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            ulong register = offset + (ulong)i;
            lock (_lock) data[i] = register == StatusOffset ? _status : (byte)0;
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            AcpiPowerRequest? request = null;
            byte value = data[i];
            lock (_lock)
            {
                switch (offset + (ulong)i)
                {
                    case ControlOffset when (value & SleepEnable) != 0:
                        int type = (value & SleepTypeMask) >> SleepTypeShift;
                        if (type == S5SleepType) request = AcpiPowerRequest.PowerOff;
                        else { IgnoredSleepRequests++; _status |= WakeStatus; }
                        break;
                    case StatusOffset:
                        _status &= (byte)~(value & WakeStatus);
                        break;
                    case ResetOffset when value == ResetValue:
                        request = AcpiPowerRequest.Reset;
                        break;
                }
            }
            if (request is { } r) _onRequest(r);
        }
    }
}
