using System.Buffers.Binary;
using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Interrupts;

/// <summary>
/// An 82093AA-style IOAPIC (version 0x20, 24 pins) at <see cref="DefaultBaseAddress"/>: IOREGSEL at offset 0x00,
/// IOWIN at 0x10, the EOI register at 0x40. Pin inputs are logical assertion levels: a device raises its line to
/// request service whatever the programmed polarity (the polarity bit is kept for the guest to read back).
/// Level-triggered fixed/lowest-priority entries set remote IRR when an APIC accepts the message and clear it on the
/// matching EOI broadcast, redelivering while the line is still asserted.
/// </summary>
public sealed partial class IoApic : IIoDevice
{
    public const ulong DefaultBaseAddress = PcLayout.IoApicBase;
    public const ulong MmioSize = 0x1000;
    public const int PinCount = 24;
    public const uint VersionValue = 0x20 | (PinCount - 1) << 16;

    private const ulong RemoteIrr = 1ul << 14;
    private const ulong LevelTrigger = 1ul << 15;
    private const ulong Masked = 1ul << 16;
    // vector, delivery mode, destination mode, polarity, trigger mode, mask, destination
    private const ulong WritableBits = 0xFF00_0000_0001_AFFF;

    private readonly object _gate = new();
    private readonly ApicBus _bus;
    private readonly ulong[] _redirection = new ulong[PinCount];
    private uint _levels;
    private uint _select;
    private uint _id;

    public IoApic(ApicBus bus, byte id)
    {
        ArgumentNullException.ThrowIfNull(bus);
        _bus = bus;
        _id = (uint)(id & 0xF);
        for (int i = 0; i < PinCount; i++) _redirection[i] = Masked;
        bus.AttachIoApic(this);
    }

    public byte Id
    {
        get { lock (_gate) return (byte)_id; }
    }

    /// <summary>Sets the asserted state of input <paramref name="pin"/> (0-23).</summary>
    public void SetPin(int pin, bool level)
    {
        if ((uint)pin >= PinCount) throw new ArgumentOutOfRangeException(nameof(pin), pin, "The IOAPIC has pins 0 to 23.");
        lock (_gate)
        {
            uint bit = 1u << pin;
            bool wasHigh = (_levels & bit) != 0;
            if (level) _levels |= bit; else _levels &= ~bit;
            if (!level) return;
            ulong entry = _redirection[pin];
            if ((entry & LevelTrigger) != 0 || !wasHigh) TryDeliverLocked(pin);
        }
    }

    /// <summary>The redirection entry of <paramref name="pin"/> as the guest programmed it (for tests and the monitor).</summary>
    public ulong GetRedirection(int pin)
    {
        if ((uint)pin >= PinCount) throw new ArgumentOutOfRangeException(nameof(pin), pin, "The IOAPIC has pins 0 to 23.");
        lock (_gate) return _redirection[pin];
    }

    /// <summary>An EOI for <paramref name="vector"/> (broadcast from a local APIC or written to the EOI register).</summary>
    internal void HandleEoi(int vector)
    {
        lock (_gate)
        {
            for (int pin = 0; pin < PinCount; pin++)
            {
                ulong entry = _redirection[pin];
                if ((byte)entry != vector || (entry & RemoteIrr) == 0) continue;
                _redirection[pin] = entry & ~RemoteIrr;
                if ((_levels & (1u << pin)) != 0) TryDeliverLocked(pin);
            }
        }
    }

    private void TryDeliverLocked(int pin)
    {
        ulong entry = _redirection[pin];
        if ((entry & Masked) != 0) return;
        bool level = (entry & LevelTrigger) != 0;
        var mode = (ApicDeliveryMode)((entry >> 8) & 7);
        bool tracksRemoteIrr = level && mode is ApicDeliveryMode.Fixed or ApicDeliveryMode.LowestPriority;
        if (tracksRemoteIrr && (entry & RemoteIrr) != 0) return; // still being serviced
        var message = new ApicMessage((byte)entry, mode, (entry & (1ul << 11)) != 0, (byte)(entry >> 56), tracksRemoteIrr);
        // Delivered under our lock: APICs never call back into the IOAPIC while holding theirs.
        bool accepted = _bus.Deliver(message);
        if (accepted && tracksRemoteIrr) _redirection[pin] = entry | RemoteIrr;
    }

    public void Read(ulong offset, Span<byte> data)
    {
        uint value;
        lock (_gate)
        {
            value = (offset & ~3ul) switch
            {
                0x00 => _select,
                0x10 => ReadIndirectLocked(),
                _ => 0,
            };
        }
        int shift = (int)(offset & 3);
        for (int i = 0; i < data.Length; i++)
            data[i] = shift + i < 4 ? (byte)(value >> (8 * (shift + i))) : (byte)0;
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if ((offset & 3) != 0 || data.Length == 0) return;
        uint value = data.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(data) : data[0];
        lock (_gate)
        {
            switch (offset)
            {
                case 0x00:
                    _select = value & 0xFF;
                    break;
                case 0x10:
                    WriteIndirectLocked(value);
                    break;
                case 0x40:
                    break; // handled below, outside the switch, to share HandleEoi's path
            }
        }
        if (offset == 0x40) HandleEoi((byte)value);
    }

    private uint ReadIndirectLocked()
    {
        switch (_select)
        {
            case 0x00: return _id << 24;
            case 0x01: return VersionValue;
            case 0x02: return _id << 24; // arbitration ID
        }
        if (_select >= 0x10 && _select < 0x10 + 2 * PinCount)
        {
            ulong entry = _redirection[(_select - 0x10) >> 1];
            return (_select & 1) == 0 ? (uint)entry : (uint)(entry >> 32);
        }
        return 0;
    }

    private void WriteIndirectLocked(uint value)
    {
        if (_select == 0x00)
        {
            _id = (value >> 24) & 0xF;
            return;
        }
        if (_select < 0x10 || _select >= 0x10 + 2 * PinCount) return;
        int pin = (int)(_select - 0x10) >> 1;
        ulong old = _redirection[pin];
        ulong written = (_select & 1) == 0
            ? (old & 0xFFFF_FFFF_0000_0000) | value
            : (old & 0x0000_0000_FFFF_FFFF) | ((ulong)value << 32);
        ulong entry = (written & WritableBits) | (old & RemoteIrr);
        if ((entry & LevelTrigger) == 0) entry &= ~RemoteIrr; // edge entries have no remote IRR
        _redirection[pin] = entry;
        // Unmasking (or reprogramming) a level entry whose line is asserted delivers it now.
        if ((entry & LevelTrigger) != 0 && (_levels & (1u << pin)) != 0) TryDeliverLocked(pin);
    }
}
