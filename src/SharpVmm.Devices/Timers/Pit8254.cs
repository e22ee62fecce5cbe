using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Timers;

/// <summary>
/// The 8254 programmable interval timer at ports 0x40-0x43 (register at 0x40, 4 ports), clocked at 1.193182 MHz of
/// <see cref="Core.Time.GuestClock"/> time. Channel 0's output drives <paramref name="irq0"/> (wire it to GSI 0:
/// PIC IRQ0 and IOAPIC pin 2); channel 1 exists but drives nothing; channel 2's gate and output are reached
/// through <see cref="SystemControlPort"/> (port 0x61), as Linux uses them to calibrate the TSC.
/// Channel 0 interrupts come from the VM's <see cref="TimerService"/>; periodic modes fire at most every
/// <see cref="MinPeriodicIntervalNs"/> on the host (missed edges coalesce as on an edge-triggered line).
/// </summary>
public sealed partial class Pit8254 : IIoDevice
{
    public const ushort BasePort = PcLayout.PitPort;
    public const ushort PortCount = 4;
    public const int Gsi = PcLayout.PitGsi;
    public const long FrequencyHz = PitChannel.FrequencyHz;
    public const long MinPeriodicIntervalNs = 100_000;

    private readonly object _gate = new();
    private readonly TimerService _timers;
    private readonly IInterruptLine _irq0;
    private readonly GuestTimer _timer;
    private readonly PitChannel[] _channels = [new(gate: true), new(gate: true), new(gate: false)];
    private long _nextEdgeNs = -1;
    private bool _irqHigh;

    public Pit8254(TimerService timers, IInterruptLine irq0)
    {
        ArgumentNullException.ThrowIfNull(timers);
        ArgumentNullException.ThrowIfNull(irq0);
        _timers = timers;
        _irq0 = irq0;
        _timer = timers.CreateTimer(OnChannel0Edge);
    }

    internal long NowNs => _timers.Clock.NowNs;

    private long Now => NowNs;

    /// <summary>Channel 2's gate (port 0x61 bit 0).</summary>
    public bool Channel2Gate
    {
        get { lock (_gate) return _channels[2].Gate; }
        set { lock (_gate) _channels[2].SetGate(value, Now); }
    }

    /// <summary>Channel 2's output now (port 0x61 bit 5).</summary>
    public bool Channel2Output
    {
        get { lock (_gate) return _channels[2].Output(Now); }
    }

    /// <summary>Channel 0's output now (the level behind IRQ0).</summary>
    public bool Channel0Output
    {
        get { lock (_gate) return _channels[0].Output(Now); }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_gate)
        {
            long now = Now;
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                data[i] = port < 3 ? _channels[port].Read(now) : (byte)0xFF; // the control word is write-only
            }
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            long now = Now;
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                if (port < 3) WriteCountLocked((int)port, data[i], now);
                else if (port == 3) WriteControlLocked(data[i], now);
            }
        }
    }

    private void WriteControlLocked(byte value, long now)
    {
        int select = value >> 6;
        if (select == 3)
        {
            // Read-back: bit 5 clear latches counts, bit 4 clear latches status, bits 3:1 select channels 2:0.
            for (int c = 0; c < 3; c++)
            {
                if ((value & (2 << c)) == 0) continue;
                if ((value & 0x10) == 0) _channels[c].LatchStatus(now);
                if ((value & 0x20) == 0) _channels[c].LatchCount(now);
            }
            return;
        }
        int access = (value >> 4) & 3;
        PitChannel ch = _channels[select];
        if (access == 0)
        {
            ch.LatchCount(now);
            return;
        }
        ch.WriteControl((value >> 1) & 7, access, (value & 1) != 0);
        if (select == 0) Channel0ChangedLocked(now);
    }

    private void WriteCountLocked(int channel, byte value, long now)
    {
        bool loaded = _channels[channel].WriteCount(value, now);
        if (channel == 0 && (loaded || _channels[0].Mode == 0)) Channel0ChangedLocked(now);
    }

    /// <summary>After reprogramming channel 0: set IRQ0 to its output and arm the next rising edge.</summary>
    private void Channel0ChangedLocked(long now)
    {
        PitChannel ch = _channels[0];
        SetIrqLocked(ch.Output(now));
        long next = ch.NextRisingEdge(now);
        _nextEdgeNs = next;
        if (next < 0) _timer.Cancel();
        else _timer.Arm(next);
    }

    private void OnChannel0Edge(long deadlineNs)
    {
        lock (_gate)
        {
            if (deadlineNs != _nextEdgeNs) return; // reprogrammed since
            PitChannel ch = _channels[0];
            if (ch.IsOneShotRise)
            {
                SetIrqLocked(true); // modes 0/1: output stays high until reprogrammed
                _nextEdgeNs = -1;
                return;
            }
            // Rate generator / square wave / strobe: a rising edge each time; edge-triggered inputs latch it.
            SetIrqLocked(false);
            SetIrqLocked(true);
            long now = Now;
            long next = ch.NextRisingEdge(Math.Max(deadlineNs + MinPeriodicIntervalNs - 1, now));
            _nextEdgeNs = next;
            if (next >= 0) _timer.Arm(next);
        }
    }

    private void SetIrqLocked(bool level)
    {
        if (level == _irqHigh) return;
        _irqHigh = level;
        if (level) _irq0.Raise(); else _irq0.Lower();
    }
}
