using SharpVmm.Core.Io;

namespace SharpVmm.Devices.Timers;

/// <summary>
/// Port 0x61, "system control port B" (1 port): bit 0 PIT channel 2 gate, bit 1 speaker data enable, bits 2-3
/// parity/IOCHK check enables (stored), bit 4 the DRAM refresh toggle (flips every 15.085 µs of guest time),
/// bit 5 PIT channel 2 output; bits 6-7 (error flags) read 0.
/// </summary>
public sealed partial class SystemControlPort(Pit8254 pit) : IIoDevice
{
    public const ushort Port = 0x61;

    private const long RefreshHalfPeriodNs = 15_085;
    private readonly object _gate = new();
    private byte _stored;

    public void Read(ulong offset, Span<byte> data)
    {
        if (data.IsEmpty) return;
        byte value;
        lock (_gate) value = (byte)(_stored & 0x0F);
        if (pit.Channel2Output) value |= 0x20;
        if ((pit.NowNs / RefreshHalfPeriodNs & 1) != 0) value |= 0x10;
        data[0] = value;
        data[1..].Fill(0xFF);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        lock (_gate)
        {
            _stored = (byte)(data[0] & 0x0F);
            pit.Channel2Gate = (data[0] & 1) != 0;
        }
    }
}
