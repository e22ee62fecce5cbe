using SharpVmm.Core.Io;

namespace SharpVmm.Devices.Interrupts;

/// <summary>
/// The PC's two cascaded 8259A PICs: master at ports 0x20/0x21 (IRQ 0-7), slave at 0xA0/0xA1 (IRQ 8-15) on the
/// master's IR2, and the ELCR edge/level registers at 0x4D0/0x4D1. Register the three <see cref="IIoDevice"/>
/// windows <see cref="MasterPorts"/>, <see cref="SlavePorts"/> and <see cref="ElcrPorts"/> (2 ports each).
/// The master's INT output is <see cref="IntOutput"/>; <see cref="IntOutputChanged"/> reports its changes (invoked
/// under the PIC lock: handlers must not call back into the PIC). The CPU side takes a vector with <see cref="Acknowledge"/>.
/// </summary>
public sealed partial class PicPair
{
    public const ushort MasterBasePort = 0x20;
    public const ushort SlaveBasePort = 0xA0;
    public const ushort ElcrBasePort = 0x4D0;
    public const ushort PortCount = 2;

    private readonly object _gate = new();
    private readonly Pic8259Chip _master = new(isMaster: true);
    private readonly Pic8259Chip _slave = new(isMaster: false);
    private volatile bool _intOutput;

    public PicPair()
    {
        MasterPorts = new ChipPorts(this, _master);
        SlavePorts = new ChipPorts(this, _slave);
        ElcrPorts = new ElcrWindow(this);
        // Until the guest initializes them, present the vectors a BIOS would (IRQ0-7 at 0x08, IRQ8-15 at 0x70).
        _master.VectorBase = 0x08;
        _slave.VectorBase = 0x70;
        _master.Icw3 = 0x04;
        _slave.Icw3 = 0x02;
        _master.Imr = 0xFF;
        _slave.Imr = 0xFF;
    }

    /// <summary>Ports 0x20-0x21.</summary>
    public IIoDevice MasterPorts { get; }

    /// <summary>Ports 0xA0-0xA1.</summary>
    public IIoDevice SlavePorts { get; }

    /// <summary>Ports 0x4D0-0x4D1.</summary>
    public IIoDevice ElcrPorts { get; }

    /// <summary>The master's INT pin: an interrupt is waiting for an INTA cycle.</summary>
    public bool IntOutput => _intOutput;

    public Action<bool>? IntOutputChanged { get; set; }

    /// <summary>Drives IR <paramref name="irq"/> (0-15) to <paramref name="level"/>. IRQ2 is the cascade input and is ignored.</summary>
    public void SetIrq(int irq, bool level)
    {
        if ((uint)irq >= 16) throw new ArgumentOutOfRangeException(nameof(irq), irq, "The PIC pair has IRQ inputs 0 to 15.");
        if (irq == 2) return;
        lock (_gate)
        {
            if (irq < 8) _master.SetInput(irq, level);
            else _slave.SetInput(irq - 8, level);
            UpdateLocked();
        }
    }

    /// <summary>
    /// The INTA cycle: returns the vector of the highest-priority pending request and puts it in service. With nothing
    /// pending (the request went away) it returns the spurious vector of IR7 (master) or IR15 (slave) without setting ISR.
    /// </summary>
    public int Acknowledge()
    {
        lock (_gate)
        {
            int vector;
            int irq = _master.PendingIrq();
            if (irq < 0)
            {
                vector = _master.VectorBase + 7;
            }
            else
            {
                _master.Acknowledge(irq);
                if (irq == 2)
                {
                    int irq2 = _slave.PendingIrq();
                    if (irq2 < 0)
                    {
                        vector = _slave.VectorBase + 7;
                    }
                    else
                    {
                        _slave.Acknowledge(irq2);
                        vector = _slave.VectorBase + irq2;
                    }
                    // The slave drops INT during INTA; if it still has a request, the master sees a new edge.
                    _master.SetInput(2, false);
                }
                else
                {
                    vector = _master.VectorBase + irq;
                }
            }
            UpdateLocked();
            return vector;
        }
    }

    /// <summary>IRR, ISR, IMR of both chips as 16-bit values (IRQ n = bit n), for tests and the monitor.</summary>
    public (ushort Irr, ushort Isr, ushort Imr) Snapshot()
    {
        lock (_gate)
            return ((ushort)(_master.Irr | _slave.Irr << 8), (ushort)(_master.Isr | _slave.Isr << 8), (ushort)(_master.Imr | _slave.Imr << 8));
    }

    private void UpdateLocked()
    {
        _master.SetInput(2, _slave.PendingIrq() >= 0);
        bool output = _master.PendingIrq() >= 0;
        if (output == _intOutput) return;
        _intOutput = output;
        IntOutputChanged?.Invoke(output);
    }

    private byte ReadChip(Pic8259Chip chip, ulong offset)
    {
        lock (_gate)
        {
            if ((offset & 1) != 0) return chip.Imr;
            if (chip.PollPending)
            {
                chip.PollPending = false;
                int irq = chip.PendingIrq();
                if (irq < 0) return 0;
                chip.Acknowledge(irq);
                UpdateLocked();
                return (byte)(0x80 | irq);
            }
            return chip.ReadIsr ? chip.Isr : chip.Irr;
        }
    }

    private void WriteChip(Pic8259Chip chip, ulong offset, byte value)
    {
        lock (_gate)
        {
            if ((offset & 1) == 0) chip.WriteCommand(value);
            else chip.WriteData(value);
            UpdateLocked();
        }
    }

    private byte ReadElcr(int index)
    {
        lock (_gate) return index == 0 ? _master.Elcr : _slave.Elcr;
    }

    private void WriteElcr(int index, byte value)
    {
        lock (_gate)
        {
            Pic8259Chip chip = index == 0 ? _master : _slave;
            chip.Elcr = (byte)(value & chip.ElcrWritableMask);
            UpdateLocked();
        }
    }

    private sealed class ChipPorts(PicPair pair, Pic8259Chip chip) : IIoDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            for (int i = 0; i < data.Length; i++) data[i] = pair.ReadChip(chip, offset + (ulong)i);
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            for (int i = 0; i < data.Length; i++) pair.WriteChip(chip, offset + (ulong)i, data[i]);
        }
    }

    private sealed class ElcrWindow(PicPair pair) : IIoDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            for (int i = 0; i < data.Length; i++) data[i] = pair.ReadElcr((int)((offset + (ulong)i) & 1));
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            for (int i = 0; i < data.Length; i++) pair.WriteElcr((int)((offset + (ulong)i) & 1), data[i]);
        }
    }
}
