using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;

namespace SharpVmm.Devices.Serial;

/// <summary>
/// A 16550A UART (8 registers; COM1 is at port 0x3F8 on IRQ 4). Transmission is instant, so THR is always
/// empty; received bytes wait in a FIFO. Loopback (MCR bit 4) works as on the chip because Linux's 8250 driver
/// uses it to probe for a real UART. The interrupt output is a level: high while any enabled condition holds.
/// </summary>
public sealed partial class Uart16550 : IIoDevice, IDisposable
{
    // Register offsets.
    private const int Rbr = 0, Thr = 0, Dll = 0, Ier = 1, Dlm = 1, Iir = 2, Fcr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    private const byte IerRda = 0x01, IerThre = 0x02, IerRls = 0x04, IerMsi = 0x08;
    private const byte IirNone = 0x01, IirRls = 0x06, IirRda = 0x04, IirThre = 0x02, IirMsi = 0x00, IirFifoOn = 0xC0;
    private const byte LcrDlab = 0x80;
    private const byte McrDtr = 0x01, McrRts = 0x02, McrOut1 = 0x04, McrOut2 = 0x08, McrLoop = 0x10;
    private const byte LsrDr = 0x01, LsrOe = 0x02, LsrThre = 0x20, LsrTemt = 0x40;
    private const byte MsrDcts = 0x01, MsrDdsr = 0x02, MsrTeri = 0x04, MsrDdcd = 0x08, MsrCts = 0x10, MsrDsr = 0x20, MsrRi = 0x40, MsrDcd = 0x80;

    /// <summary>Bytes held for the guest; more than the chip's 16 so a pasted line is not lost while the guest is slow.</summary>
    public const int RxCapacity = 4096;

    private readonly object _gate = new();
    private readonly IInterruptLine? _irq;
    private readonly ICharBackend? _backend;
    private readonly Queue<byte> _rx = new();
    private byte _ier, _lcr, _mcr, _lsrErrors, _msrDelta, _scr, _dll = 0x0C, _dlm, _fcr;
    private bool _thrEmptyPending; // THRE interrupt condition; cleared by reading IIR or writing THR
    private bool _irqLevel;

    public Uart16550(ICharBackend? backend, IInterruptLine? irq)
    {
        _backend = backend;
        _irq = irq;
        _backend?.Start(Receive);
    }

    public ICharBackend? Backend => _backend;

    /// <summary>Bytes written by the guest (its console output), for tests and statistics.</summary>
    public long BytesTransmitted { get; private set; }

    /// <summary>Host-side input: queued for the guest. Bytes beyond <see cref="RxCapacity"/> are dropped with an overrun, as on a UART.</summary>
    public void Receive(ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            foreach (byte b in data)
            {
                if (_rx.Count >= RxCapacity) { _lsrErrors |= LsrOe; break; }
                _rx.Enqueue(b);
            }
            UpdateIrq();
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        byte v;
        lock (_gate)
        {
            v = ReadRegister((int)offset);
            UpdateIrq();
        }
        data[0] = v;
        if (data.Length > 1) data[1..].Clear();
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        byte tx = 0;
        bool transmit;
        lock (_gate)
        {
            transmit = WriteRegister((int)offset, data[0], out tx);
            UpdateIrq();
        }
        // Outside the lock: a slow terminal must not block the guest's reads of other registers.
        if (transmit) _backend?.Write([tx]);
    }

    private byte ReadRegister(int reg)
    {
        bool dlab = (_lcr & LcrDlab) != 0;
        switch (reg)
        {
            case Rbr when dlab: return _dll;
            case Rbr:
                return _rx.Count > 0 ? _rx.Dequeue() : (byte)0;
            case Ier when dlab: return _dlm;
            case Ier: return _ier;
            case Iir:
            {
                byte id = InterruptId();
                if (id == IirThre) _thrEmptyPending = false; // reading IIR with THRE as the source clears it
                return (byte)(id | ((_fcr & 0x01) != 0 ? IirFifoOn : 0));
            }
            case Lcr: return _lcr;
            case Mcr: return _mcr;
            case Lsr:
            {
                byte lsr = (byte)(LsrThre | LsrTemt | _lsrErrors | (_rx.Count > 0 ? LsrDr : 0));
                _lsrErrors = 0;
                return lsr;
            }
            case Msr:
            {
                byte msr = (byte)(ModemLines() | _msrDelta);
                _msrDelta = 0;
                return msr;
            }
            case Scr: return _scr;
            default: return 0xFF;
        }
    }

    private bool WriteRegister(int reg, byte v, out byte tx)
    {
        tx = 0;
        bool dlab = (_lcr & LcrDlab) != 0;
        switch (reg)
        {
            case Dll when dlab: _dll = v; return false;
            case Thr:
                _thrEmptyPending = true; // the byte leaves at once, so the holding register is empty again
                if ((_mcr & McrLoop) != 0)
                {
                    if (_rx.Count < RxCapacity) _rx.Enqueue(v); else _lsrErrors |= LsrOe;
                    return false;
                }
                BytesTransmitted++;
                tx = v;
                return true;
            case Dlm when dlab: _dlm = v; return false;
            case Ier:
                // Enabling THRE with the holding register empty raises the interrupt at once (8250 behaviour Linux relies on).
                if ((v & IerThre) != 0 && (_ier & IerThre) == 0) _thrEmptyPending = true;
                _ier = (byte)(v & 0x0F);
                return false;
            case Fcr:
                if ((v & 0x02) != 0) _rx.Clear();
                _fcr = (byte)(v & 0xC9);
                return false;
            case Lcr: _lcr = v; return false;
            case Mcr:
            {
                byte before = ModemLines();
                _mcr = (byte)(v & 0x1F);
                byte after = ModemLines();
                // Delta bits in MSR: CTS, DSR, DCD on change; RI on its falling edge.
                if (((before ^ after) & MsrCts) != 0) _msrDelta |= MsrDcts;
                if (((before ^ after) & MsrDsr) != 0) _msrDelta |= MsrDdsr;
                if (((before ^ after) & MsrDcd) != 0) _msrDelta |= MsrDdcd;
                if ((before & MsrRi) != 0 && (after & MsrRi) == 0) _msrDelta |= MsrTeri;
                return false;
            }
            case Lsr: case Msr: return false; // read-only
            case Scr: _scr = v; return false;
            default: return false;
        }
    }

    /// <summary>Modem status lines: in loopback they mirror MCR's outputs; otherwise a connected, ready line.</summary>
    private byte ModemLines()
    {
        if ((_mcr & McrLoop) == 0) return MsrCts | MsrDsr | MsrDcd;
        byte m = 0;
        if ((_mcr & McrRts) != 0) m |= MsrCts;
        if ((_mcr & McrDtr) != 0) m |= MsrDsr;
        if ((_mcr & McrOut1) != 0) m |= MsrRi;
        if ((_mcr & McrOut2) != 0) m |= MsrDcd;
        return m;
    }

    /// <summary>The highest-priority pending, enabled interrupt as an IIR identification.</summary>
    private byte InterruptId()
    {
        if ((_ier & IerRls) != 0 && (_lsrErrors & LsrOe) != 0) return IirRls;
        if ((_ier & IerRda) != 0 && _rx.Count > 0) return IirRda;
        if ((_ier & IerThre) != 0 && _thrEmptyPending) return IirThre;
        if ((_ier & IerMsi) != 0 && _msrDelta != 0) return IirMsi;
        return IirNone;
    }

    private void UpdateIrq()
    {
        // OUT2 gates the interrupt pin on PC serial cards (Linux sets it before expecting interrupts);
        // loopback disconnects the pin from the outside world.
        bool level = InterruptId() != IirNone && (_mcr & (McrOut2 | McrLoop)) == McrOut2;
        if (level == _irqLevel || _irq is null) { _irqLevel = level; return; }
        _irqLevel = level;
        if (level) _irq.Raise(); else _irq.Lower();
    }

    public void Dispose() => _backend?.Dispose();
}
